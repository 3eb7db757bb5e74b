using TorchSharp;
using System.ComponentModel;
using RecDistill.Distillation;
using RecDistill.Models;
using RecDistill.Training;
using Spectre.Console;
using Spectre.Console.Cli;

namespace RecDistill.Cli.Commands;

public sealed class DemoSettings : DataSettings
{
    [CommandOption("--teacher-dim <N>")]
    [Description("Teacher embedding dimension.")]
    [DefaultValue(200)]
    public int TeacherDim { get; set; } = 200;

    [CommandOption("--student-dim <N>")]
    [Description("Student embedding dimension (1/10 of the teacher by default).")]
    [DefaultValue(20)]
    public int StudentDim { get; set; } = 20;

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
        if (TeacherDim < 1 || StudentDim < 1) return ValidationResult.Error("dimensions must be at least 1");
        if (Epochs < 1) return ValidationResult.Error("--epochs must be at least 1");
        return base.Validate();
    }
}

/// <summary>`recdistill demo`: the main job end to end on the built-in synthetic data (or --data).</summary>
public sealed class DemoCommand : Command<DemoSettings>
{
    public override int Execute(CommandContext context, DemoSettings settings, CancellationToken cancellationToken)
    {
        var device = RunWorkflow.SetupTorch("cpu", settings.Threads);
        var dataOptions = settings.ToOptions();
        var data = RunWorkflow.LoadData(dataOptions);
        AnsiConsole.MarkupLine($"[bold]{Markup.Escape(data.Name)}[/]: {data.NumUsers:N0} users, {data.NumItems:N0} items, train/valid/test {data.TrainCount:N0}/{data.ValidCount:N0}/{data.TestCount:N0}");
        var train = new TrainOptions { MaxEpochs = settings.Epochs, EvalEvery = 5, Patience = 5, LearningRate = settings.Lr, Seed = settings.Seed };
        var rows = new List<(string, string, Evaluation.EvaluationResult)>();
        FrozenTeacher? teacher = null;
        try
        {
            foreach (var role in new[] { "teacher", "scratch", "mkd" })
            {
                int dim = role == "teacher" ? settings.TeacherDim : settings.StudentDim;
                var dir = Path.Combine(settings.Out, role);
                RunWorkflow.PrepareOutDir(dir, settings.Overwrite);
                using var model = RunWorkflow.CreateModel(Backbone.Bpr, dim, 0, data, device, settings.Seed);
                using var ctx = teacher is null ? null : new DistillationContext(teacher, data, dim, device);
                torch.manual_seed(settings.Seed);
                using var kd = role == "mkd" ? DistillationMethods.Create(DistillationOptions.Defaults("mkd", Backbone.Bpr), ctx!) : null;
                var run = RunWorkflow.TrainAndEvaluate($"{role} bpr d={dim}", model, data, train, Path.Combine(dir, ModelFile.FileName), kd);
                RunWorkflow.WriteRun(dir, "demo", dataOptions, train, data, run);
                if (role == "teacher") teacher = FrozenTeacher.From(model);
                rows.Add(($"{role} (BPR d={dim}, best epoch {run.Train.BestEpoch})", RunWorkflow.FormatCount(model.ParameterCount), run.Test));
            }
        }
        finally
        {
            teacher?.Dispose();
        }
        AnsiConsole.Write(RunWorkflow.MetricsTable("test metrics, full ranking", rows));
        AnsiConsole.MarkupLine($"runs written under [blue]{Markup.Escape(settings.Out)}[/]");
        return 0;
    }
}
