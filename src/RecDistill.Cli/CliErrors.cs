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
            Report(message);
            return e is TrainingDivergedException ? 3 : 2;
        }
    }

    /// <summary>
    /// Writes "error: MESSAGE" to standard error: standard output may be the CSV or table a script is
    /// capturing, and an error must not end up inside it.
    /// </summary>
    public static void Report(string message) => WriteLine("error", 31, message);

    /// <summary>Writes "stopped: MESSAGE" to standard error: a run stopped by Ctrl+C or SIGTERM, and how to continue it.</summary>
    public static void ReportStopped(string message) => WriteLine("stopped", 33, message);

    private static void WriteLine(string label, int colourCode, string message)
    {
        // Written as one line, never wrapped at a console width; the label in colour only on a terminal.
        bool colour = !Console.IsErrorRedirected && Environment.GetEnvironmentVariable("NO_COLOR") is null or "";
        Console.Error.WriteLine(colour ? $"\u001b[{colourCode}m{label}:\u001b[0m {message}" : $"{label}: {message}");
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
