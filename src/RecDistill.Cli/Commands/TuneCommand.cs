using System.ComponentModel;
using System.Globalization;
using RecDistill.Distillation;
using RecDistill.Runs;
using Spectre.Console;
using Spectre.Console.Cli;

namespace RecDistill.Cli.Commands;

[NotTaken("--data", "--format", "--delimiter", "--header", "--columns", "--threshold", "--min-user", "--min-item", "--split",
    "--synthetic-users", "--synthetic-items", "--model", "--layers", "--wd", "--overwrite", "--resume",
    Hint = "tuning uses the teacher's own data split (without its test set) and backbone, searches the weight decay, and continues an interrupted search when run again")]
[OptionText("--dim", "Student embedding dimension. Default: a tenth of the teacher's.")]
[OptionText("--out", "Directory of the search: METHOD/trial-K run directories and records, and METHOD.json (the chosen settings, for compare --configs). Default: runs/tune; required with --report-only. Run again with the same options to continue (search.json records them); several tune processes on one --out split its trials between them.")]
[OptionText("--seed", "Seed of the trials' draws and of every trial's run (the same for every method).")]
[TakesOnlyWith("--report-only", "it trains nothing and rebuilds trials.md and trials.csv from the records", "--out")]
public sealed class TuneSettings : TrainSettings
{
    [CommandOption("--teacher <DIR>")]
    [Description("Run directory of the teacher (written by train).")]
    public string Teacher { get; set; } = "";

    [CommandOption("--methods <LIST>")]
    [Description("Comma-separated methods to tune, in this order.")]
    [DefaultValue(MethodNames.All)]
    public string Methods { get; set; } = MethodNames.All;

    [CommandOption("--trials <N>")]
    [Description("Trials per method, the same for every method: trial 0 (METHOD/trial-0) is the method's defaults, trials 1 and on are drawn from the ranges in docs/distillation.md. It is the search's budget: a search continued on the same --out keeps its count.")]
    [DefaultValue(8)]
    public int Trials { get; set; } = 8;

    [CommandOption("--report-only")]
    [Description("Train nothing: write OUT/trials.md and trials.csv (every trial so far, the chosen ones marked) from the records in --out.")]
    public bool ReportOnly { get; set; }

    public string[] MethodList => MethodNames.Parse(Methods);

    public override ValidationResult Validate()
    {
        if (ReportOnly) return Out is null ? ValidationResult.Error("--report-only needs --out DIR, the search's directory") : base.Validate();
        if (string.IsNullOrEmpty(Teacher)) return ValidationResult.Error("--teacher DIR is required (a run directory written by train)");
        if (Trials < 1) return ValidationResult.Error("--trials must be at least 1");
        if (MethodNames.Problem(MethodList) is { } problem) return ValidationResult.Error(problem);
        return base.Validate();
    }
}

/// <summary>`recdistill tune`: a validation-only random search per method with the same budget for every method.</summary>
public sealed class TuneCommand : Command<TuneSettings>
{
    public override int Execute(CommandContext context, TuneSettings settings, CancellationToken cancellationToken)
    {
        var outDir = settings.Out ?? Path.Combine("runs", "tune");
        if (File.Exists(outDir)) throw new UserErrorException($"--out {outDir} is a file, not a directory");
        if (settings.ReportOnly)
        {
            if (!Directory.Exists(outDir)) throw new UserErrorException($"--out {outDir}: no such directory");
            // A folder without a trial record holds no search: an empty report would hide a wrong --out.
            if (!DistillationMethods.AllNames.Any(m => Directory.Exists(Path.Combine(outDir, m)) &&
                                                       Directory.EnumerateFiles(Path.Combine(outDir, m), "trial-*.json").Any()))
                throw new UserErrorException($"--out {outDir} holds no search: it has no METHOD/trial-K.json record (tune writes them)");
            Tuning.WriteReport(outDir);
            AnsiConsole.MarkupLine($"wrote [blue]{Markup.Escape(Path.Combine(outDir, "trials.md"))}[/] and trials.csv");
            return 0;
        }
        return StopSignals.Run(cancellationToken,
            () => $"{outDir} keeps its finished trials and the interrupted trial's checkpoint; run the same tune command again to continue",
            token => Tune(settings, outDir, token));
    }

    private static int Tune(TuneSettings settings, string outDir, CancellationToken cancellationToken)
    {
        // The students take the teacher's backbone, and without --wd its default weight decay (the library refuses a teacher that is no run).
        var backbone = RunDirectory.IsFinished(settings.Teacher) ? RunDirectory.ReadRecord(settings.Teacher).Model.Backbone : (Models.Backbone?)null;
        settings.RefuseAdamFor("tune", settings.Teacher, backbone);
        var tuned = Tuning.Tune(settings.Teacher, settings.MethodList, settings.ToTrainOptions(backbone), settings.Trials, outDir,
            settings.Dim, settings.Compute, ConsoleReporter.Instance, cancellationToken);
        // Methods whose last trials other processes still run have no choice yet: this process wrote no METHOD.json for them.
        var pending = settings.MethodList.Where(m => tuned.All(x => x.Method != m)).ToList();
        string trialsMd = Markup.Escape(Path.Combine(outDir, "trials.md"));
        if (tuned.Count == 0)
        {
            AnsiConsole.MarkupLine($"chose nothing here: other processes still run trials of {string.Join(", ", pending)}, and the one that ends " +
                                   $"a method's last trial writes its METHOD.json; wrote [blue]{trialsMd}[/] and trials.csv (every trial so far)");
            return 0;
        }
        var t = new Table().Border(TableBorder.Rounded).Title($"tuned on validation ({settings.Trials} trials per method)");
        foreach (var c in new[] { "method", "trial", "valid ndcg@20", "weight decay", "parameters" }) t.AddColumn(c);
        foreach (var x in tuned)
            t.AddRow(x.Method, x.Trial.ToString(CultureInfo.InvariantCulture), x.ValidNdcg20.ToString("F4"), x.Config.WeightDecay.ToString("G3"),
                Markup.Escape(string.Join(", ", x.Config.Parameters.Select(p => $"{p.Key} {p.Value:G4}"))));
        AnsiConsole.Write(t);
        AnsiConsole.MarkupLine($"wrote [blue]{Markup.Escape(outDir)}[/]: {string.Join(", ", tuned.Select(x => x.Method + ".json"))} for compare --configs " +
                               $"{Markup.Escape(outDir)}, trials.md/.csv (every trial)" +
                               (pending.Count > 0 ? $"; other processes still run trials of {string.Join(", ", pending)}" : ""));
        return 0;
    }
}
