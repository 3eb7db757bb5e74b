using System.ComponentModel;
using System.Diagnostics;
using RecDistill.Data;
using RecDistill.Distillation;
using RecDistill.Training;
using Spectre.Console;
using Spectre.Console.Cli;
using RecDistill.Runs;

namespace RecDistill.Cli.Commands;

[NotTaken("--dim", "--overwrite", Hint = "compare sets dimensions with --teacher-dim and --student-dim, and reuses an existing --out instead of overwriting it")]
[OptionText("--model", "bpr | lightgcn: the backbone of the teacher and of every student.")]
[OptionText("--out", "Directory of the comparison: the teacher's and every student's runs, results.md/.csv/.json and the charts. Default: runs/compare. An existing one is reused: finished runs are kept (refused if made with other settings), an interrupted one resumes; several compare processes on one --out split its runs between them.")]
[OptionText("--seed", "Seed of the teacher and of each method's first run (run k uses seed + k - 1); also the data's seed.")]
[OptionText("--resume", "Continue an interrupted compare from its directory, with its own options (only --threads and --device may be given again).")]
[OptionText("--wd", "Weight decay of the teacher and of the students (a method tuned by --configs takes its own). Default: 1e-3 for bpr, 1e-4 for lightgcn.")]
[NotWith("--teachers", "each teacher gives one run, on its own data and backbone", "--seeds", "--model", "--teacher-dim", "--layers",
    "--data", "--format", "--delimiter", "--header", "--columns", "--threshold", "--min-user", "--min-item", "--split", "--synthetic-users", "--synthetic-items")]
[TakesOnlyWith("--report-only", "it trains nothing and rebuilds the report from the records", "--out", "--records", "--methods", "--title", "--import")]
[OnlyFor("--model", "bpr", "lightgcn", "LightGCN's propagation layers, for --model", "--layers")]
[OnlyFor("--model", "bpr", "bpr", "BPR's row-sparse Adam; LightGCN trains with dense Adam, for --model", "--adam")]
[OnlyWith("--data", DataSettings.SyntheticIsGenerated, "--delimiter", "--header", "--threshold", Without = "synthetic data")]
[NotWith("--data", DataSettings.SyntheticOnly, "--synthetic-users", "--synthetic-items")]
public sealed class CompareSettings : TrainSettings
{
    [CommandOption("--teacher-dim <N>")]
    [Description("Teacher embedding dimension.")]
    [DefaultValue(200)]
    public int TeacherDim { get; set; } = 200;

    [CommandOption("--student-dim <N>")]
    [Description("Student embedding dimension. Default: 1/10 of the teacher's.")]
    public int? StudentDim { get; set; }

    [CommandOption("--methods <LIST>")]
    [Description("Comma-separated methods, run in this order for each seed; the report shows the teacher and these. Default: " + MethodNames.All +
                 ". With --report-only: the methods the report shows, in this order (default: every method with records).")]
    public string? Methods { get; set; }

    [CommandOption("--seeds <N>")]
    [Description("Runs per method: seeds --seed, --seed + 1 and so on. Not with --teachers (one run per teacher).")]
    [DefaultValue(3)]
    public int Seeds { get; set; } = 3;

    [CommandOption("--records <DIR>")]
    [Description("Where each finished run's small record (<method>-seed<k>.json) is kept, e.g. results/citeulike/bpr. Default: OUT/records.")]
    public string? Records { get; set; }

    [CommandOption("--title <TEXT>")]
    [Description("Title of the tables and charts. Default: dataset, backbone and dimensions (with --report-only: comparison (N runs)).")]
    public string? Title { get; set; }

    [CommandOption("--import <METHOD:K=DIR>")]
    [Description("Record a finished train/distill run directory as seed K (default 1) of METHOD (or as the teacher: teacher=DIR) before anything else; repeatable. Recorded runs are not run again.")]
    public string[] Import { get; set; } = Array.Empty<string>();

    [CommandOption("--teachers <LIST>")]
    [Description("Comma-separated finished teacher runs (train's --out): run k of every method distils from the k-th teacher, one run per teacher, with seed --seed + k - 1, on that teacher's own data and backbone (so --seeds, --model, --teacher-dim, --layers and the data options are not taken with it). Without it, one teacher is trained in OUT/teacher.")]
    public string? Teachers { get; set; }

    [CommandOption("--configs <DIR>")]
    [Description("Each method's settings (student weight decay, searched parameters) from DIR/METHOD.json written by tune; every method listed must have one (an ablation without its own takes mkd.json's weights). A tuned weight decay replaces --wd for that method.")]
    public string? Configs { get; set; }

    [CommandOption("--report-only")]
    [Description("Train nothing: rebuild results.md/.csv/.json and the charts in OUT from the records.")]
    public bool ReportOnly { get; set; }

    public string[] MethodList => MethodNames.Parse(Methods ?? MethodNames.All);

    public string[]? TeacherList => Teachers?.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    public override ValidationResult Validate()
    {
        if (DimensionOptions.Problem(TeacherDim, StudentDim) is { } dimensions) return ValidationResult.Error(dimensions);
        if (Seeds < 1) return ValidationResult.Error("--seeds must be at least 1");
        if (MethodNames.Problem(MethodList) is { } problem) return ValidationResult.Error(problem);
        if (TeacherList is { Length: 0 }) return ValidationResult.Error("--teachers lists no teacher run");
        return base.Validate();
    }
}

/// <summary>
/// `recdistill compare`: trains (or reuses) the teacher, runs every method for every seed, and
/// writes the paper-style table and charts. Finished runs are reused and an interrupted run is
/// resumed from its checkpoint when the same command is run again; a failing run is reported and
/// the others go on.
/// </summary>
public sealed class CompareCommand : Command<CompareSettings>
{
    public override int Execute(CommandContext context, CompareSettings settings, CancellationToken cancellationToken)
    {
        var outDir = settings.Out ?? Path.Combine("runs", "compare");
        var recordsDir = settings.Records ?? Path.Combine(outDir, "records");
        var order = settings.MethodList;
        // Every --import is checked now; its record is written only when the rest of the command is accepted.
        var imports = settings.Import.Select(ReadImport).ToList();
        if (settings.ReportOnly)
        {
            using var written = new PendingRecords(recordsDir, imports);
            var existing = ComparisonReport.ReadRecords(recordsDir);
            if (existing.Count == 0) throw new UserErrorException($"--report-only: no run records in {recordsDir}");
            // Without --methods, every method with records, the usual ones first.
            if (settings.Methods is null) order = ComparisonReport.MethodsOf(existing, MethodNames.Parse(MethodNames.All));
            int shown = existing.Count(r => r.Method == RunSummary.TeacherMethod || order.Contains(r.Method));
            var absent = order.Where(m => existing.All(r => r.Method != m)).ToList();
            if (absent.Count > 0 && absent.Count < order.Length)
                Console.Error.WriteLine($"warning: {recordsDir} has no records of {string.Join(", ", absent)}: the report leaves them out");
            if (!existing.Any(r => order.Contains(r.Method)))
                throw new UserErrorException($"--report-only: {recordsDir} has no records of {string.Join(", ", order)}");
            Report(outDir, recordsDir, settings.Title ?? $"comparison ({shown} runs)", order, Array.Empty<string>());
            AnsiConsole.MarkupLine($"wrote [blue]{Markup.Escape(Path.Combine(outDir, "results.md"))}[/] (and .csv, .json, PNG charts) from {shown} records in {Markup.Escape(recordsDir)}" +
                                   (shown < existing.Count ? $" ({existing.Count - shown} of other methods left out)" : ""));
            written.Keep();
            return 0;
        }

        var configs = new Dictionary<string, TunedConfig>();
        if (settings.Configs is not null)
        {
            if (!Directory.Exists(settings.Configs))
                throw new UserErrorException($"--configs {settings.Configs}: no such directory (give the --out of a recdistill tune)");
            var missing = new List<string>();
            foreach (var m in order)
            {
                // An ablation without a tuning of its own takes MKD's tuned settings for the parts it keeps.
                var c = Tuning.ReadTuned(settings.Configs, m)
                        ?? (DistillationMethods.Ablations.Contains(m) ? Tuning.ReadTuned(settings.Configs, "mkd") : null);
                if (c is null) missing.Add(m); else configs[m] = c;
            }
            if (missing.Count > 0)
                throw new UserErrorException($"--configs {settings.Configs} has no settings for {string.Join(", ", missing)} (run recdistill tune for " +
                    string.Join(", ", missing.Select(m => DistillationMethods.Ablations.Contains(m) ? $"{m} or mkd, whose weights an ablation takes" : m)) + ")");
            // Methods searched with different budgets are not compared on equal terms: say so, loudly.
            var budgets = configs.GroupBy(kv => kv.Value.Trials).OrderBy(g => g.Key).ToList();
            if (budgets.Count > 1)
                Console.Error.WriteLine("warning: --configs " + settings.Configs + " holds searches of unequal budgets: " +
                    string.Join("; ", budgets.Select(g => $"{g.Key} trials for {string.Join(", ", g.Select(kv => kv.Key))}")) +
                    " (run recdistill tune --trials N for every method to give each the same)");
        }
        // A run from the search's teacher with the search's seed repeats the trial that was chosen for its validation
        // score (same teacher, seed and settings): reported as a fresh run, it would flatter the method.
        if (settings.TeacherList is { } given)
        {
            static string Full(string dir) => Path.TrimEndingDirectorySeparator(Path.GetFullPath(dir));
            var repeats = (from kv in configs
                           from k in Enumerable.Range(1, given.Length)
                           where Full(given[k - 1]) == Full(kv.Value.Teacher) && settings.Seed + k - 1 == kv.Value.Seed
                           select $"{kv.Key} run {k}").ToList();
            if (repeats.Count > 0)
                Console.Error.WriteLine($"warning: {string.Join(", ", repeats)} {(repeats.Count == 1 ? "distils" : "distil")} from the search's teacher with the search's seed, so each repeats " +
                                        $"its chosen trial instead of drawing a fresh run; give another --seed (README: the benchmark protocol)");
        }
        // Given teachers train nothing here, and a tuned method takes its own weight decay: --wd would be idle.
        if (settings.Wd is not null && settings.TeacherList is not null && settings.Configs is not null && configs.Count == order.Length)
            throw new UserErrorException($"--wd has no effect here: the teachers are given (--teachers) and every method takes its tuned weight decay from --configs {settings.Configs}");
        if (File.Exists(outDir)) throw new UserErrorException($"--out {outDir} is a file, not a directory");
        return StopSignals.Run(cancellationToken,
            () => File.Exists(Path.Combine(outDir, ResumableRun.ArgsFile))
                ? $"{outDir} keeps its finished runs and the interrupted run's checkpoint; continue with recdistill compare --resume {outDir}"
                : $"nothing was trained in {outDir}; run the same command again",
            token => Compare(settings, outDir, recordsDir, order, configs, imports, token));
    }

    private static int Compare(CompareSettings settings, string outDir, string recordsDir, string[] order,
        Dictionary<string, TunedConfig> configs, IReadOnlyList<RunSummary> imports, CancellationToken cancellationToken)
    {
        var teachers = settings.TeacherList;
        var dataOptions = settings.ToOptions();
        var reporter = ConsoleReporter.Instance;
        string title;
        if (teachers is null)
        {
            var data = Workflow.LoadData(dataOptions, reporter);
            int studentDim = settings.StudentDim ?? Math.Max(1, settings.TeacherDim / 10);
            title = settings.Title ?? $"{data.Name}: {settings.Model.ToLowerInvariant()} teacher d={settings.TeacherDim}, students d={studentDim}";
            AnsiConsole.MarkupLine($"[bold]{Markup.Escape(title)}[/] ({data.NumUsers:N0} users, {data.NumItems:N0} items); " +
                                   $"{order.Length} methods x {settings.Seeds} seeds; runs in {Markup.Escape(outDir)}, records in {Markup.Escape(recordsDir)}");
        }
        else
        {
            var first = RunDirectory.ReadRecord(teachers[0]);
            int studentDim = settings.StudentDim ?? Math.Max(1, first.Model.Dim / 10);
            title = settings.Title ?? $"{Path.GetFileName(first.Data.Path ?? "synthetic")}: {(first.Model.Backbone == Models.Backbone.Bpr ? "bpr" : "lightgcn")} " +
                    $"teacher d={first.Model.Dim} ({(teachers.Length == 1 ? "1 teacher" : $"{teachers.Length} teachers")}), students d={studentDim}";
            AnsiConsole.MarkupLine($"[bold]{Markup.Escape(title)}[/]: {order.Length} methods x {teachers.Length} teachers; runs in {Markup.Escape(outDir)}, records in {Markup.Escape(recordsDir)}");
        }
        var plan = new ComparisonPlan
        {
            OutDir = outDir, RecordsDir = recordsDir, Data = dataOptions,
            Teacher = new ModelShape(settings.Backbone, settings.TeacherDim, settings.Layers), StudentDim = settings.StudentDim,
            Train = settings.ToTrainOptions(teachers is null ? null : RunDirectory.ReadRecord(teachers[0]).Model.Backbone), Methods = order, Seeds = settings.Seeds, Teachers = teachers,
            Configs = settings.Configs is null ? null : configs, Compute = settings.Compute, CommandLine = CliApp.CommandLine, Title = title,
        };
        // The plan is checked against what OUT holds before resume.json is written: a refused command must
        // not leave its own arguments behind for the next --resume, nor the records it imports.
        using (var written = new PendingRecords(recordsDir, imports))
        {
            Comparison.Check(plan);
            written.Keep();
        }
        Directory.CreateDirectory(outDir);
        if (ResumableRun.Directory is null) ResumableRun.Record(outDir, "compare", CliApp.Args);
        var outcome = Comparison.Run(plan, reporter, ComparisonCharts.Write, cancellationToken);
        AnsiConsole.WriteLine(outcome.Markdown);
        AnsiConsole.MarkupLine($"compare took {outcome.Elapsed:hh\\:mm\\:ss} this time; wrote [blue]{Markup.Escape(Path.Combine(outDir, "results.md"))}[/] (and .csv, .json, PNG charts)");
        return outcome.Failures.Count == 0 ? 0 : 4;
    }

    /// <summary>--import METHOD[:K]=DIR: the record of a run made by train/distill, checked (written by <see cref="PendingRecords"/>).</summary>
    private static RunSummary ReadImport(string spec)
    {
        int eq = spec.IndexOf('=');
        if (eq <= 0) throw new UserErrorException($"--import {spec}: expected METHOD[:K]=DIR, e.g. mkd:1=runs/mkd");
        var key = spec[..eq].ToLowerInvariant();
        var dir = spec[(eq + 1)..];
        var parts = key.Split(':');
        string method = parts[0];
        int k = 1;
        if (parts.Length > 2 || (parts.Length == 2 && (!int.TryParse(parts[1], out k) || k < 1)))
            throw new UserErrorException($"--import {spec}: the seed index after ':' must be a positive integer");
        if (method != RunSummary.TeacherMethod && !DistillationMethods.IsKnown(method))
            throw new UserErrorException($"--import {spec}: '{method}' is not teacher or one of {string.Join(", ", DistillationMethods.AllNames)}");
        if (!RunDirectory.IsFinished(dir)) throw new UserErrorException($"--import {spec}: {dir} holds no finished run (metrics.json is missing)");
        // A record says what its run was: a teacher is a train run, a student a distill run of that method.
        var made = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(dir, RunDirectory.MetricsFile)))?["distillation"]?["method"]?.GetValue<string>();
        if (method == RunSummary.TeacherMethod ? made is not null : !string.Equals(made ?? "a train run (no method)", method, StringComparison.OrdinalIgnoreCase))
            throw new UserErrorException($"--import {spec}: {dir} is {(made is null ? "a train run" : $"a {made} run")}, not {(method == RunSummary.TeacherMethod ? "a teacher (a train run)" : $"a {method} run")}");
        // A teacher imported without an index is a comparison's one teacher; teacher:K=DIR is the teacher of run K.
        return RunSummary.FromRunDirectory(dir, method, method == RunSummary.TeacherMethod && parts.Length == 1 ? 0 : k);
    }

    /// <summary>
    /// Imported records written into the records folder for the rest of a command to read; unless <see cref="Keep"/>
    /// is called (the command was accepted), disposing puts back what each file was before (or removes it).
    /// </summary>
    private sealed class PendingRecords : IDisposable
    {
        private readonly List<(string Path, string? Before)> _files = new();
        private bool _keep;

        public PendingRecords(string recordsDir, IReadOnlyList<RunSummary> records)
        {
            foreach (var record in records)
            {
                var path = Path.Combine(recordsDir, record.FileName);
                _files.Add((path, File.Exists(path) ? File.ReadAllText(path) : null));
                Directory.CreateDirectory(recordsDir);
                ComparisonReport.WriteRecord(recordsDir, record);
            }
        }

        public void Keep()
        {
            if (_keep) return;
            _keep = true;
            foreach (var (path, _) in _files) AnsiConsole.MarkupLine($"[grey]recorded {Markup.Escape(path)}[/]");
        }

        public void Dispose()
        {
            if (_keep) return;
            foreach (var (path, before) in _files)
                if (before is null) File.Delete(path); else AtomicFile.WriteText(path, before);
        }
    }

    private static string Report(string outDir, string recordsDir, string title, IReadOnlyList<string> order, IReadOnlyList<string> failures) =>
        ComparisonReport.Write(outDir, title, ComparisonReport.ReadRecords(recordsDir), order, failures, ComparisonCharts.Write);
}
