using System.Globalization;
using RecDistill.Evaluation;
using RecDistill.Runs;
using RecDistill.Training;
using Spectre.Console;

namespace RecDistill.Cli;

/// <summary>The library's run reports drawn on the terminal: a status line for steps, a live progress bar for training.</summary>
public sealed class ConsoleReporter : IRunReporter
{
    public static ConsoleReporter Instance { get; } = new();

    /// <summary>A progress note (resuming, reusing, a run's start): on a terminal in grey; without one, on stderr, apart from the results.</summary>
    public void Message(string text)
    {
        if (AnsiConsole.Profile.Capabilities.Interactive) AnsiConsole.MarkupLine($"[grey]{Markup.Escape(text)}[/]");
        else Console.Error.WriteLine(text);
    }

    /// <summary>On a terminal a spinner with the description; without one, the description as a line on stderr.</summary>
    public T Step<T>(string description, Func<T> work)
    {
        if (!AnsiConsole.Profile.Capabilities.Interactive)
        {
            // Spectre's status falls back to printing the description on stdout, into the output a script reads.
            Console.Error.WriteLine(description);
            return work();
        }
        T result = default!;
        AnsiConsole.Status().Start(Markup.Escape(description), _ => result = work());
        return result;
    }

    /// <summary>On a terminal a live bar (epoch, loss, last validation metrics, ETA); without one, a line per validation on stderr.</summary>
    public TrainResult Train(string label, int maxEpochs, Func<Action<TrainingProgress>, TrainResult> fit)
    {
        TrainResult result = null!;
        if (!AnsiConsole.Profile.Capabilities.Interactive)
        {
            // No terminal (a log, a pipe): no progress bar, whose every refresh would be printed into the
            // output a script reads, but one line per validation on standard error.
            return fit(p =>
            {
                if (p.AfterValidation && p.LastValid is not null)
                    Console.Error.WriteLine($"{label}: epoch {p.Epoch} loss {p.EpochLoss:F4} valid ndcg@20 {p.LastValid.GetValueOrDefault("ndcg@20"):F4} recall@20 {p.LastValid.GetValueOrDefault("recall@20"):F4} best {p.BestValid:F4} @{p.BestEpoch} [{p.Elapsed:hh\\:mm\\:ss}]");
            });
        }
        AnsiConsole.Progress()
            .AutoClear(false)
            .HideCompleted(false)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(),
                new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn(), new SpinnerColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask(Markup.Escape(label), maxValue: maxEpochs);
                result = fit(p =>
                {
                    task.Value = p.Epoch - 1 + (double)p.Batch / p.Batches;
                    task.Description = Markup.Escape(
                        $"{label} epoch {p.Epoch}/{p.MaxEpochs} loss {p.EpochLoss:F4}" +
                        (p.LastValid is null ? "" : $" valid ndcg@20 {p.LastValid.GetValueOrDefault("ndcg@20"):F4} (best {p.BestValid:F4} @{p.BestEpoch})"));
                });
                task.Value = maxEpochs;
                task.Description = Markup.Escape($"{label} done: best epoch {result.BestEpoch}, {result.EpochsRun} epochs" +
                    (result.EarlyStopped ? " (early stop)" : ""));
            });
        return result;
    }
}

/// <summary>How the commands show results.</summary>
public static class CliDisplay
{
    /// <summary>A table of Recall/NDCG/Precision/Hit at 10/20/50 for several named results.</summary>
    public static Table MetricsTable(string title, IEnumerable<(string Name, string Size, EvaluationResult Result)> rows)
    {
        var cols = new[] { "recall@10", "recall@20", "ndcg@10", "ndcg@20", "recall@50", "ndcg@50", "hit@20" };
        var t = new Table().Title(title).Border(TableBorder.Rounded);
        t.AddColumn("model");
        t.AddColumn(new TableColumn("params").RightAligned());
        foreach (var c in cols) t.AddColumn(new TableColumn(c).RightAligned());
        foreach (var (name, size, r) in rows)
            t.AddRow(new[] { Markup.Escape(name), size }.Concat(cols.Select(c => r.Metrics.TryGetValue(c, out var v) ? v.ToString("F4", CultureInfo.InvariantCulture) : "-")).ToArray());
        return t;
    }

    public static string FormatCount(long n) => n >= 1_000_000 ? $"{n / 1e6:F2}M" : n >= 1_000 ? $"{n / 1e3:F1}k" : n.ToString(CultureInfo.InvariantCulture);

    /// <summary>A finished run's test metrics and summary lines.</summary>
    public static void ShowRun(RunResult run)
    {
        if (run.Test.Users > 0)
            AnsiConsole.Write(MetricsTable("test metrics (best validation epoch)", new[] { (run.Label, FormatCount(run.Parameters), run.Test) }));
        else
            AnsiConsole.Write(MetricsTable("validation metrics (best validation epoch; no test set)", new[] { (run.Label, FormatCount(run.Parameters), run.Valid) }));
        AnsiConsole.MarkupLine($"best epoch {run.Train.BestEpoch} of {run.Train.EpochsRun}, {run.Train.TrainSeconds:F0} s; valid ndcg@20 {run.Valid["ndcg@20"]:F4}");
    }
}
