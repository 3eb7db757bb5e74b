using RecDistill.Cli.Commands;
using Spectre.Console;
using Spectre.Console.Cli;

namespace RecDistill.Cli;

/// <summary>The `recdistill` command tree; Program and the tests both run it.</summary>
public static class CliApp
{
    /// <summary>The arguments of the command being run, recorded in metrics.json.</summary>
    public static string CommandLine { get; private set; } = "";

    public static int Run(string[] args)
    {
        CommandLine = "recdistill " + string.Join(' ', args.Select(a => a.Contains(' ') ? $"\"{a}\"" : a));
        var app = new CommandApp();
        app.Configure(c =>
        {
            c.SetApplicationName("recdistill");
            c.PropagateExceptions();
            c.AddCommand<DemoCommand>("demo")
                .WithDescription("The main job: train a teacher, a 1/10-size student from scratch and a 1/10-size MKD student on the built-in synthetic data (or --data), and print a table.");
            c.AddCommand<StatsCommand>("stats").WithDescription("Dataset statistics after cleaning and splitting.")
                .WithExample("stats", "--data", "../shared/data/citeulike-t/users.dat", "--format", "citeulike");
            c.AddCommand<TrainCommand>("train").WithDescription("Train a BPR-MF or LightGCN model with early stopping; writes metrics.json and model.bin.")
                .WithExample("train", "--data", "../shared/data/citeulike-t/users.dat", "--format", "citeulike", "--model", "bpr", "--dim", "200", "--out", "runs/teacher");
            c.AddCommand<DistillCommand>("distill").WithDescription("Train a small student against a frozen teacher: scratch, nkd, cpd, sld or mkd.")
                .WithExample("distill", "--teacher", "runs/teacher", "--method", "mkd", "--out", "runs/mkd");
            c.AddCommand<EvaluateCommand>("evaluate").WithDescription("Full-ranking metrics of a saved run on its data (or on --data).")
                .WithExample("evaluate", "--model", "runs/teacher");
        });
        return CliErrors.Run(() => app.Run(args));
    }
}
