using System.ComponentModel;
using RecDistill.Runs;
using Spectre.Console;
using Spectre.Console.Cli;

namespace RecDistill.Cli.Commands;

public sealed class TermsSettings : CommandSettings
{
    [CommandOption("--model <DIR>")]
    [Description("Finished run directory written by distill, compare or tune (its history.csv); repeat the option for several runs.")]
    public string[] Models { get; set; } = Array.Empty<string>();

    public override ValidationResult Validate() =>
        Models.Length == 0 ? ValidationResult.Error("--model DIR is required") : ValidationResult.Success();
}

/// <summary>`recdistill terms`: each loss term's size and gradient share over a run (LossTermSummary), as Markdown.</summary>
public sealed class TermsCommand : Command<TermsSettings>
{
    public override int Execute(CommandContext context, TermsSettings settings, CancellationToken cancellationToken)
    {
        // Every run is read before anything is printed: a bad directory stops the command with nothing half-written.
        var summaries = settings.Models.Select(dir => LossTermSummary.Read(dir)).ToList();
        foreach (var s in summaries) AnsiConsole.WriteLine(s.ToMarkdown());
        return 0;
    }
}
