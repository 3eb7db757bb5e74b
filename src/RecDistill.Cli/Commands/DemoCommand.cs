using System.ComponentModel;
using RecDistill.Distillation;
using RecDistill.Models;
using RecDistill.Runs;
using RecDistill.Training;
using Spectre.Console;
using Spectre.Console.Cli;

namespace RecDistill.Cli.Commands;

[OnlyWith("--data", DataSettings.SyntheticIsGenerated, "--delimiter", "--header", "--threshold", Without = "synthetic data")]
[NotWith("--data", DataSettings.SyntheticOnly, "--synthetic-users", "--synthetic-items")]
public sealed class DemoSettings : DataSettings
{
    [CommandOption("--teacher-dim <N>")]
    [Description("Teacher embedding dimension.")]
    [DefaultValue(200)]
    public int TeacherDim { get; set; } = 200;

    [CommandOption("--student-dim <N>")]
    [Description("Student embedding dimension. Default: 1/10 of the teacher's.")]
    public int? StudentDim { get; set; }

    /// <summary>The student's dimension: as given, else a tenth of the teacher's.</summary>
    public int StudentDimension => StudentDim ?? Math.Max(1, TeacherDim / 10);

    [CommandOption("--epochs <N>")]
    [Description("Maximum epochs per model.")]
    [DefaultValue(40)]
    public int Epochs { get; set; } = 40;

    [CommandOption("--lr <X>")]
    [Description("Adam learning rate for all three models.")]
    [DefaultValue(0.005)]
    public double Lr { get; set; } = 0.005;

    [CommandOption("--out <DIR>")]
    [Description("Where the teacher and student runs are written.")]
    [DefaultValue("runs/demo")]
    public string Out { get; set; } = "runs/demo";

    [CommandOption("--threads <N>")]
    [Description("CPU threads for tensor work. Default: all cores.")]
    public int? Threads { get; set; }

    [CommandOption("--overwrite")]
    [Description("Replace an earlier demo in --out.")]
    public bool Overwrite { get; set; }

    public override ValidationResult Validate()
    {
        if (DimensionOptions.Problem(TeacherDim, StudentDim) is { } problem) return ValidationResult.Error(problem);
        if (Epochs < 1) return ValidationResult.Error("--epochs must be at least 1");
        return base.Validate();
    }
}

/// <summary>`recdistill demo`: the main job end to end on the built-in synthetic data (or --data).</summary>
public sealed class DemoCommand : Command<DemoSettings>
{
    public override int Execute(CommandContext context, DemoSettings settings, CancellationToken cancellationToken) =>
        StopSignals.Run(cancellationToken,
            () => $"the demo in {settings.Out} is not finished; run it again with --overwrite (a demo starts over)",
            token => Demo(settings, token));

    private static int Demo(DemoSettings settings, CancellationToken cancellationToken)
    {
        var compute = new ComputeOptions("cpu", settings.Threads);
        var dataOptions = settings.ToOptions();
        var train = new TrainOptions { MaxEpochs = settings.Epochs, EvalEvery = 5, Patience = 5, LearningRate = settings.Lr, Seed = settings.Seed };
        RunOutput Output(string role) => new(Path.Combine(settings.Out, role))
        {
            Overwrite = settings.Overwrite, Command = "demo", CommandLine = CliApp.CommandLine,
        };
        var reporter = ConsoleReporter.Instance;
        var runs = new List<(string Role, RunResult Run)>
        {
            ("teacher", Workflow.Train(dataOptions, new ModelShape(Backbone.Bpr, settings.TeacherDim, 0), train, Output("teacher"), compute, reporter, cancellationToken)),
        };
        using (var session = TeacherSession.Open(Path.Combine(settings.Out, "teacher"), compute, null, settings.StudentDimension, reporter))
        {
            AnsiConsole.MarkupLine($"[bold]{Markup.Escape(session.Data.Name)}[/]: {session.Data.NumUsers:N0} users, {session.Data.NumItems:N0} items, train/valid/test {session.Data.TrainCount:N0}/{session.Data.ValidCount:N0}/{session.Data.TestCount:N0}");
            foreach (var method in new[] { "scratch", "mkd" })
                runs.Add((method, session.Distill(method, train, output: Output(method), cancellationToken: cancellationToken)));
        }
        AnsiConsole.Write(CliDisplay.MetricsTable("test metrics, full ranking", runs.Select(r =>
            ($"{r.Role} (BPR d={(r.Role == "teacher" ? settings.TeacherDim : settings.StudentDimension)}, best epoch {r.Run.Train.BestEpoch})",
             CliDisplay.FormatCount(r.Run.Parameters), r.Run.Test))));
        AnsiConsole.MarkupLine($"runs written under [blue]{Markup.Escape(settings.Out)}[/]");
        return 0;
    }
}
