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
[OptionText("--out", "Directory of the comparison: the teacher's and every student's runs, results.md/.csv/.json and the charts. Default: runs/compare. An existing one is reused: finished runs are kept, an interrupted one resumes.")]
[OptionText("--seed", "Seed of the teacher and of each method's first run (run k uses seed + k - 1); also the data's seed.")]
[OptionText("--resume", "Continue an interrupted compare from its directory, with its own options (only --threads and --device may be given again).")]
[OptionText("--wd", "Weight decay of the teacher and the students. Default: 1e-3 for bpr, 1e-4 for lightgcn.")]
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
    [Description("Comma-separated methods, run in this order for each seed.")]
    [DefaultValue(MethodNames.All)]
    public string Methods { get; set; } = MethodNames.All;

    [CommandOption("--seeds <N>")]
    [Description("Runs per method, with seeds --seed, --seed + 1, ...")]
    [DefaultValue(3)]
    public int Seeds { get; set; } = 3;

    [CommandOption("--records <DIR>")]
    [Description("Where each finished run's small record (<method>-seed<k>.json) is kept, e.g. results/citeulike/bpr. Default: OUT/records.")]
    public string? Records { get; set; }

    [CommandOption("--title <TEXT>")]
    [Description("Title of the tables and charts. Default: dataset, backbone and dimensions.")]
    public string? Title { get; set; }

    [CommandOption("--import <METHOD:K=DIR>")]
    [Description("Record a finished train/distill run directory as seed K (default 1) of METHOD (or as the teacher: teacher=DIR) before anything else; repeatable. Recorded runs are not run again.")]
    public string[] Import { get; set; } = Array.Empty<string>();

    [CommandOption("--configs <DIR>")]
    [Description("Each method's settings (student weight decay, searched parameters) from DIR/METHOD.json written by tune; every method listed must have one.")]
    public string? Configs { get; set; }

    [CommandOption("--report-only")]
    [Description("Train nothing: rebuild results.md/.csv/.json and the charts in OUT from the records.")]
    public bool ReportOnly { get; set; }

    public string[] MethodList => MethodNames.Parse(Methods);

    public override ValidationResult Validate()
    {
        if (TeacherDim < 1 || StudentDim is < 1) return ValidationResult.Error("dimensions must be at least 1");
        if (Seeds < 1) return ValidationResult.Error("--seeds must be at least 1");
        if (MethodNames.Problem(MethodList) is { } problem) return ValidationResult.Error(problem);
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
        var failures = new List<string>();
        foreach (var spec in settings.Import) ImportRun(spec, recordsDir);
        if (settings.ReportOnly)
        {
            var existing = ComparisonReport.ReadRecords(recordsDir);
            if (existing.Count == 0) throw new UserErrorException($"--report-only: no run records in {recordsDir}");
            Report(outDir, recordsDir, settings.Title ?? $"comparison ({existing.Count} runs)", order, failures);
            return 0;
        }

        var tuned = order.ToDictionary(m => m, m => settings.Configs is null ? null : Tuning.ReadTuned(settings.Configs, m));
        if (settings.Configs is not null && tuned.Where(kv => kv.Value is null).Select(kv => kv.Key).ToList() is { Count: > 0 } missing)
            throw new UserErrorException($"--configs {settings.Configs} has no settings for {string.Join(", ", missing)} (run recdistill tune for them)");
        var compute = settings.Compute;
        if (File.Exists(outDir)) throw new UserErrorException($"--out {outDir} is a file, not a directory");
        Directory.CreateDirectory(outDir);
        Directory.CreateDirectory(recordsDir);
        if (ResumableRun.Directory is null) ResumableRun.Record(outDir, "compare", CliApp.Args);
        var dataOptions = settings.ToOptions();
        var reporter = ConsoleReporter.Instance;
        var data = Workflow.LoadData(dataOptions, reporter);
        int studentDim = settings.StudentDim ?? Math.Max(1, settings.TeacherDim / 10);
        string title = settings.Title ?? $"{data.Name}: {settings.Model.ToLowerInvariant()} teacher d={settings.TeacherDim}, students d={studentDim}";
        AnsiConsole.MarkupLine($"[bold]{Markup.Escape(title)}[/] ({data.NumUsers:N0} users, {data.NumItems:N0} items); " +
                               $"{order.Length} methods x {settings.Seeds} seeds; runs in {Markup.Escape(outDir)}, records in {Markup.Escape(recordsDir)}");

        // The teacher: reused when finished, resumed when interrupted.
        var teacherDir = Path.Combine(outDir, "teacher");
        var baseTrain = settings.ToTrainOptions();
        if (!RunDirectory.IsFinished(teacherDir))
        {
            var output = RunOf(teacherDir);
            AnsiConsole.Write(new Rule($"teacher d={settings.TeacherDim}{(output.Resume ? " (resuming)" : "")}").LeftJustified());
            Workflow.Train(dataOptions, new ModelShape(settings.Backbone, settings.TeacherDim, settings.Layers), baseTrain, output, compute, reporter);
        }
        else AnsiConsole.MarkupLine($"[grey]teacher: reusing {Markup.Escape(teacherDir)}[/]");
        ComparisonReport.WriteRecord(recordsDir, RunSummary.FromRunDirectory(teacherDir, RunSummary.TeacherMethod, 0));

        using var session = TeacherSession.Open(teacherDir, compute, dataOptions, studentDim, reporter);
        var jobs = (from k in Enumerable.Range(1, settings.Seeds) from m in order select (Method: m, SeedIndex: k)).ToList();
        var done = new List<double>();
        var clock = Stopwatch.StartNew();
        for (int j = 0; j < jobs.Count; j++)
        {
            var (method, k) = jobs[j];
            var dir = Path.Combine(outDir, "runs", $"{method}-seed{k}");
            if (RunDirectory.IsFinished(dir))
            {
                ComparisonReport.WriteRecord(recordsDir, RunSummary.FromRunDirectory(dir, method, k));
                continue;
            }
            if (File.Exists(Path.Combine(recordsDir, $"{method}-seed{k}.json")))
            {
                AnsiConsole.MarkupLine($"[grey]{method} seed {k}: recorded in {Markup.Escape(recordsDir)}, not run again[/]");
                continue;
            }
            int left = jobs.Skip(j).Count(x => !RunDirectory.IsFinished(Path.Combine(outDir, "runs", $"{x.Method}-seed{x.SeedIndex}"))
                && !File.Exists(Path.Combine(recordsDir, $"{x.Method}-seed{x.SeedIndex}.json")));
            string eta = done.Count == 0 ? "ETA after the first run" : $"ETA {TimeSpan.FromSeconds(done.Average() * left):hh\\:mm\\:ss} for {left} runs";
            var output = RunOf(dir);
            AnsiConsole.Write(new Rule($"run {j + 1}/{jobs.Count}: {method} seed {k}{(output.Resume ? " (resuming)" : "")} - {eta}").LeftJustified());
            var runClock = Stopwatch.StartNew();
            try
            {
                // Run k of every method has the seed --seed + k - 1.
                var train = baseTrain with { Seed = settings.Seed + k - 1 };
                if (tuned[method] is { } c) session.Distill(method, train with { WeightDecay = c.Config.WeightDecay }, Tuning.Apply(c.Config, session.Backbone), output);
                else session.Distill(method, train, output: output);
                ComparisonReport.WriteRecord(recordsDir, RunSummary.FromRunDirectory(dir, method, k));
                done.Add(runClock.Elapsed.TotalSeconds);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                // One failing run is reported; the others go on, and its checkpoint (if any) stays for a retry.
                var message = $"{method} seed {k}: {e.GetType().Name}: {e.Message}";
                failures.Add(message);
                AtomicFile.WriteText(Path.Combine(dir, "error.txt"), e.ToString());
                AnsiConsole.MarkupLine($"[red]failed:[/] {Markup.Escape(message)}");
            }
            Report(outDir, recordsDir, title, order, failures);
        }
        var md = Report(outDir, recordsDir, title, order, failures);
        AnsiConsole.WriteLine(md);
        AnsiConsole.MarkupLine($"compare took {clock.Elapsed:hh\\:mm\\:ss} this time; wrote [blue]{Markup.Escape(Path.Combine(outDir, "results.md"))}[/] (and .csv, .json, PNG charts)");
        return failures.Count == 0 ? 0 : 4;
    }

    /// <summary>--import METHOD[:K]=DIR: a run made by train/distill becomes a record of the comparison.</summary>
    private static void ImportRun(string spec, string recordsDir)
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
            throw new UserErrorException($"--import {spec}: '{method}' is not teacher or one of {string.Join(", ", DistillationMethods.Names)}");
        if (!RunDirectory.IsFinished(dir)) throw new UserErrorException($"--import {spec}: {dir} holds no finished run (metrics.json is missing)");
        Directory.CreateDirectory(recordsDir);
        var record = RunSummary.FromRunDirectory(dir, method, method == RunSummary.TeacherMethod ? 0 : k);
        ComparisonReport.WriteRecord(recordsDir, record);
        AnsiConsole.MarkupLine($"[grey]recorded {Markup.Escape(dir)} as {Markup.Escape(record.FileName)}[/]");
    }

    /// <summary>A run directory of the comparison: kept when it exists, resumed from its checkpoint when it has one.</summary>
    private static RunOutput RunOf(string dir) => new(dir)
    {
        Overwrite = true, Resume = File.Exists(RunDirectory.CheckpointPath(dir)), Command = "compare", CommandLine = CliApp.CommandLine,
    };

    private static string Report(string outDir, string recordsDir, string title, IReadOnlyList<string> order, IReadOnlyList<string> failures) =>
        ComparisonReport.Write(outDir, title, ComparisonReport.ReadRecords(recordsDir), order, failures);
}
