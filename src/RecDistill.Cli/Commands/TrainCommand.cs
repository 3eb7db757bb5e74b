using RecDistill.Training;
using Spectre.Console;
using Spectre.Console.Cli;

namespace RecDistill.Cli.Commands;

/// <summary>`recdistill train`: trains one model with early stopping and writes its run directory.</summary>
public sealed class TrainCommand : Command<TrainSettings>
{
    public override int Execute(CommandContext context, TrainSettings settings, CancellationToken cancellationToken)
    {
        var device = RunWorkflow.SetupTorch(settings.Device, settings.Threads);
        int dim = settings.Dim ?? 200;
        var outDir = settings.Out ?? Path.Combine("runs", $"{settings.Model.ToLowerInvariant()}-d{dim}-seed{settings.Seed}");
        var (statePath, resume) = RunWorkflow.PrepareRunDir(outDir, settings.Overwrite, "train");
        var dataOptions = settings.ToOptions();
        var data = RunWorkflow.LoadData(dataOptions);
        AnsiConsole.MarkupLine($"[grey]{Markup.Escape(data.Name)}: {data.NumUsers:N0} users, {data.NumItems:N0} items, train/valid/test {data.TrainCount:N0}/{data.ValidCount:N0}/{data.TestCount:N0}[/]");
        var train = settings.ToTrainOptions();
        using var model = RunWorkflow.CreateModel(settings.Backbone, dim, settings.Layers, data, device, settings.Seed);
        var run = RunWorkflow.TrainAndEvaluate($"{settings.Model} d={dim}", model, data, train,
            Path.Combine(outDir, ModelFile.FileName), statePath: statePath, resume: resume);
        RunWorkflow.WriteRun(outDir, "train", dataOptions, train, data, run);
        AnsiConsole.Write(RunWorkflow.MetricsTable("test metrics (best validation epoch)",
            new[] { ($"{settings.Model} d={dim}", RunWorkflow.FormatCount(model.ParameterCount), run.Test) }));
        AnsiConsole.MarkupLine($"best epoch {run.Train.BestEpoch} of {run.Train.EpochsRun}, {run.Train.TrainSeconds:F0} s; valid ndcg@20 {run.Valid["ndcg@20"]:F4}");
        AnsiConsole.MarkupLine($"wrote [blue]{Markup.Escape(outDir)}[/] (metrics.json, model.bin, run.json, history.csv)");
        return 0;
    }
}
