using RecDistill.Runs;
using Spectre.Console;
using Spectre.Console.Cli;

namespace RecDistill.Cli.Commands;

/// <summary>`recdistill train`: trains one model with early stopping and writes its run directory.</summary>
public sealed class TrainCommand : Command<TrainSettings>
{
    public override int Execute(CommandContext context, TrainSettings settings, CancellationToken cancellationToken)
    {
        int dim = settings.Dim ?? 200;
        var outDir = settings.Out ?? Path.Combine("runs", $"{settings.Model.ToLowerInvariant()}-d{dim}-seed{settings.Seed}");
        return StopSignals.Run(cancellationToken, () => StopSignals.ResumeHint("train", outDir), token =>
        {
            var run = Workflow.Train(settings.ToOptions(), new ModelShape(settings.Backbone, dim, settings.Layers), settings.ToTrainOptions(),
                CliApp.Output(outDir, "train", settings.Overwrite), settings.Compute, ConsoleReporter.Instance, token);
            CliDisplay.ShowRun(run);
            AnsiConsole.MarkupLine($"wrote [blue]{Markup.Escape(outDir)}[/] (metrics.json, model.bin, run.json, history.csv)");
            return 0;
        });
    }
}
