using RecDistill.Data;
using RecDistill.Serving;
using RecDistill.Training;
using Spectre.Console;
using Spectre.Console.Cli;

namespace RecDistill.Cli;

/// <summary>Maps user mistakes to one clear line and a non-zero exit code; never a stack trace for them.</summary>
public static class CliErrors
{
    public static int Run(Func<int> body)
    {
        try
        {
            return body();
        }
        catch (Exception e) when (Describe(e) is { } message)
        {
            AnsiConsole.MarkupLine($"[red]error:[/] {Markup.Escape(message)}");
            return e is TrainingDivergedException ? 3 : 2;
        }
    }

    private static string? Describe(Exception e) => e switch
    {
        DataFormatException d => d.Message,
        UserErrorException u => u.Message,
        CompactModelFormatException c => c.Message,
        UnknownUserException k => k.Message,
        UnknownItemException k => k.Message,
        TrainingDivergedException t => $"training diverged: {t.Message}",
        CommandParseException or CommandRuntimeException => e.Message,
        ArgumentException a => a.Message,
        FileNotFoundException f => f.Message,
        DirectoryNotFoundException f => f.Message,
        UnauthorizedAccessException f => f.Message,
        IOException io => io.Message,
        _ => null,
    };
}
