using System.ComponentModel;
using System.Text.Json;
using RecDistill.Evaluation;
using RecDistill.Runs;
using RecDistill.Training;
using Spectre.Console;
using Spectre.Console.Cli;

namespace RecDistill.Cli.Commands;

// A run's synthetic data is rebuilt from its run.json, and --data is a file: the synthetic sizes never apply.
[NotTaken("--synthetic-users", "--synthetic-items", Hint = "a run is evaluated on its own data (synthetic data included, rebuilt from its run.json), or on --data, a file with the run's ids")]
[OptionText("--format", "With --data: citeulike | movielens | csv | lightgcn | split. Default: guessed from the path.")]
[OnlyWith("--data", "without --data the run's own data options rebuild its exact split", "--format", "--delimiter", "--header", "--columns", "--threshold", "--min-user", "--min-item", "--split", "--seed")]
[OptionText("--data", "Evaluate on this dataset instead of the run's own (whose run.json rebuilds the exact split it was trained on); the cleaning and split options apply only with it.")]
[OptionText("--seed", "Seed of --data's split (random split).")]
public sealed class EvaluateSettings : DataSettings
{
    [CommandOption("--model <DIR>")]
    [Description("Run directory written by train (or distill).")]
    public string ModelDir { get; set; } = "";

    [CommandOption("--device <DEVICE>")]
    [Description("cpu | cuda.")]
    [DefaultValue("cpu")]
    public string Device { get; set; } = "cpu";

    [CommandOption("--threads <N>")]
    [Description("CPU threads for the scoring. Default: all cores.")]
    public int? Threads { get; set; }

    [CommandOption("--out <FILE>")]
    [Description("Also write the metrics as JSON to this file.")]
    public string? Out { get; set; }

    [CommandOption("--with-test")]
    [Description("Also score the test set of a run trained without it (a tune trial, distill --no-test), which is otherwise kept held out.")]
    public bool WithTest { get; set; }

    public override ValidationResult Validate()
    {
        if (string.IsNullOrEmpty(ModelDir)) return ValidationResult.Error("--model DIR is required");
        if (Threads is < 1) return ValidationResult.Error("--threads must be at least 1");
        return base.Validate();
    }
}

/// <summary>`recdistill evaluate`: full-ranking metrics of a saved model on its data (or on --data).</summary>
public sealed class EvaluateCommand : Command<EvaluateSettings>
{
    public override int Execute(CommandContext context, EvaluateSettings settings, CancellationToken cancellationToken) =>
        StopSignals.Run(cancellationToken, () => $"the evaluation of {settings.ModelDir} did not finish" + (settings.Out is null ? "" : $"; {settings.Out} is not written"),
            token => Evaluate(settings, token));

    private static int Evaluate(EvaluateSettings settings, CancellationToken cancellationToken)
    {
        if (settings.Out is not null) CsvText.CheckOutFile(settings.Out, "evaluation.json", settings.ModelDir);
        var e = Workflow.Evaluate(settings.ModelDir, new ComputeOptions(settings.Device, settings.Threads),
            settings.Data is null ? null : settings.ToOptions(), ConsoleReporter.Instance, settings.WithTest, cancellationToken);
        string size = CliDisplay.FormatCount(e.Parameters);
        if (e.TestHeldOut)
        {
            AnsiConsole.Write(CliDisplay.MetricsTable($"{Markup.Escape(e.Dataset)}: validation", new[] { ("valid", size, e.Valid) }));
            AnsiConsole.MarkupLine(Markup.Escape($"test: held out ({settings.ModelDir} was trained without its test set, as a tune trial " +
                "or distill --no-test is); --with-test scores it"));
        }
        else
            AnsiConsole.Write(CliDisplay.MetricsTable($"{Markup.Escape(e.Dataset)}: validation and test",
                new[] { ("valid", size, e.Valid), ("test", size, e.Test) }));
        if (settings.Out is not null)
        {
            AtomicFile.WriteText(settings.Out, e.Json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
            AnsiConsole.MarkupLine($"wrote [blue]{Markup.Escape(settings.Out)}[/]");
        }
        return 0;
    }
}
