using System.Text.Json;
using System.Text.Json.Nodes;
using System.Diagnostics;
using RecDistill.Data;
using RecDistill.Distillation;
using RecDistill.Training;

namespace RecDistill.Runs;

/// <summary>What a comparison runs: one teacher (trained here) or one given teacher per seed, and every method once per seed.</summary>
public sealed record ComparisonPlan
{
    /// <summary>Directory of the comparison: teacher/, runs/METHOD-seedK/, results.md/.csv/.json.</summary>
    public required string OutDir { get; init; }
    /// <summary>Where each finished run's small record goes. Default: OUT/records.</summary>
    public string? RecordsDir { get; init; }
    /// <summary>The dataset every run loads and splits (with the same split).</summary>
    public required DataOptions Data { get; init; }
    /// <summary>The teacher's backbone, dimension and layers (when it is trained here); students take the backbone and layers.</summary>
    public required ModelShape Teacher { get; init; }
    /// <summary>Student dimension (at least 1). Default: a tenth of the teacher's.</summary>
    public int? StudentDim { get; init; }
    /// <summary>Training options of the teacher and of every student; run k of a method uses seed Train.Seed + k - 1.</summary>
    public required TrainOptions Train { get; init; }
    /// <summary>The methods to run, by name (<see cref="DistillationMethods.AllNames"/>), in report order.</summary>
    public required IReadOnlyList<string> Methods { get; init; }
    /// <summary>Runs per method, at least 1 (ignored when <see cref="Teachers"/> is given: one run per teacher).</summary>
    public int Seeds { get; init; } = 1;
    /// <summary>Finished teacher runs: run k of every method distils from the k-th. Null: one teacher trained in OUT/teacher.</summary>
    public IReadOnlyList<string>? Teachers { get; init; }
    /// <summary>Each method's tuned settings (<see cref="Tuning.ReadTuned"/>) by method name; a method without one uses its defaults.</summary>
    public IReadOnlyDictionary<string, TunedConfig>? Configs { get; init; }
    /// <summary>Device and threads of every run.</summary>
    public ComputeOptions Compute { get; init; } = ComputeOptions.Cpu;
    /// <summary>The command line recorded in each run's files.</summary>
    public string CommandLine { get; init; } = "compare";
    /// <summary>Title of the report; null gives "comparison".</summary>
    public string? Title { get; init; }

    /// <summary>The records directory used: <see cref="RecordsDir"/>, or OUT/records.</summary>
    public string Records => RecordsDir ?? Path.Combine(OutDir, "records");
    /// <summary>Runs of each method: one per given teacher, else <see cref="Seeds"/>.</summary>
    public int RunsPerMethod => Teachers?.Count ?? Seeds;
}

/// <summary>How a comparison ended: where the report is, its markdown, and the runs that failed (the others are complete).</summary>
public sealed record ComparisonOutcome(string OutDir, string Markdown, IReadOnlyList<string> Failures, TimeSpan Elapsed);

/// <summary>
/// Runs a comparison: the teacher(s), every method for every seed, and the report. Finished runs are
/// reused, an interrupted run resumes from its checkpoint, and a failing run is reported while the
/// others go on, so running the same plan again completes it. Several processes can share one plan's
/// directory: each takes the runs no other holds (a lock file beside each run). A cancelled comparison
/// stops between runs or inside one (which keeps its checkpoint), leaving the finished runs and their
/// records in place.
/// </summary>
public static class Comparison
{
    /// <summary>What run k of a method trains with: the plan's training options at the run's seed (seed + k - 1), then <see cref="SettingsOf"/>.</summary>
    private static (TrainOptions Train, DistillationOptions? Options) SettingsOfRun(ComparisonPlan plan, string method, int seedIndex, Models.Backbone backbone) =>
        SettingsOf(plan, method, plan.Train with { Seed = plan.Train.Seed + seedIndex - 1 }, backbone);

    /// <summary>The settings a method runs with: tuned ones when the plan has them, else the method's defaults.</summary>
    public static (TrainOptions Train, DistillationOptions? Options) SettingsOf(ComparisonPlan plan, string method, TrainOptions train, Models.Backbone backbone)
    {
        if (plan.Configs is null || !plan.Configs.TryGetValue(method, out var tuned)) return (train, null);
        // An ablation tuned as MKD takes MKD's parts' settings (its config's method is "mkd").
        var config = tuned.Config.Method == method ? tuned.Config : tuned.Config with { Method = method };
        return (train with { WeightDecay = config.WeightDecay }, Tuning.Apply(config, backbone));
    }

    /// <summary>
    /// Runs the plan (finished runs reused, interrupted ones resumed) and writes the report; failed runs are listed in the outcome.
    /// <paramref name="cancellationToken"/> stops it between runs or inside the running one (which keeps its checkpoint) with
    /// <see cref="OperationCanceledException"/>; the next call continues the plan.
    /// </summary>
    public static ComparisonOutcome Run(ComparisonPlan plan, IRunReporter? reporter = null, ComparisonReport.ChartWriter? charts = null,
        CancellationToken cancellationToken = default)
    {
        // One workflow at a time in the process (Workflow's remarks); its runs take the lock again.
        using var runLock = Workflow.RunLock.EnterScope();
        cancellationToken.ThrowIfCancellationRequested();
        reporter ??= SilentReporter.Instance;
        Check(plan);
        // Method names are matched without case; directories, records and the report use the lower-case name.
        plan = plan with { Methods = plan.Methods.Select(m => m.ToLowerInvariant()).ToList() };
        Directory.CreateDirectory(plan.OutDir);
        Directory.CreateDirectory(plan.Records);
        var clock = Stopwatch.StartNew();
        var failures = new List<string>();

        var teachers = plan.Teachers ?? new[] { Path.Combine(plan.OutDir, "teacher") };
        if (plan.Teachers is null)
        {
            var dir = teachers[0];
            // Processes sharing the directory train the one teacher once: the others wait for it.
            var claim = RunClaim.TryTake(dir + ".lock");
            try
            {
                if (claim is null) reporter.Message($"{dir} is being trained by another process: waiting for it");
                while (claim is null && !RunDirectory.IsFinished(dir))
                {
                    cancellationToken.WaitHandle.WaitOne(TimeSpan.FromSeconds(5));
                    cancellationToken.ThrowIfCancellationRequested();
                    claim = RunClaim.TryTake(dir + ".lock");
                }
                if (!RunDirectory.IsFinished(dir))
                {
                    var output = RunOf(dir, plan);
                    reporter.Message($"teacher d={plan.Teacher.Dim}{(output.Resume ? " (resuming)" : "")}");
                    Workflow.Train(plan.Data, plan.Teacher, plan.Train, output, plan.Compute, reporter, cancellationToken);
                }
                else reporter.Message($"teacher: reusing {dir}");
                claim?.Release();
            }
            finally
            {
                claim?.Dispose();
            }
        }
        for (int t = 0; t < teachers.Count; t++)
            ComparisonReport.WriteRecord(plan.Records, TeacherSummary(teachers[t], plan.Teachers is null ? 0 : t + 1, plan, reporter, cancellationToken));

        var jobs = Jobs(plan);
        bool Done((string Method, int SeedIndex) job) =>
            RunDirectory.IsFinished(RunDir(plan, job.Method, job.SeedIndex)) || File.Exists(Path.Combine(plan.Records, $"{job.Method}-seed{job.SeedIndex}.json"));
        var durations = new List<double>();
        string title = plan.Title ?? "comparison";
        TeacherSession? session = null;
        int sessionTeacher = -1;
        try
        {
            for (int j = 0; j < jobs.Count; j++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var (method, k) = jobs[j];
                var dir = RunDir(plan, method, k);
                if (RunDirectory.IsFinished(dir))
                {
                    ComparisonReport.WriteRecord(plan.Records, RunSummary.FromRunDirectory(dir, method, k));
                    continue;
                }
                if (Done(jobs[j]))
                {
                    reporter.Message($"{method} seed {k}: recorded in {plan.Records}, not run again");
                    continue;
                }
                using var claim = RunClaim.TryTake(dir + ".lock");
                if (claim is null)
                {
                    reporter.Message($"{method} seed {k} is running in another process: skipped here");
                    continue;
                }
                // Another process may have finished the run between the check above and the claim.
                if (RunDirectory.IsFinished(dir))
                {
                    ComparisonReport.WriteRecord(plan.Records, RunSummary.FromRunDirectory(dir, method, k));
                    claim.Release();
                    continue;
                }
                int teacherIndex = plan.Teachers is null ? 0 : k - 1;
                if (sessionTeacher != teacherIndex)
                {
                    session?.Dispose();
                    session = null;
                    int studentDim = plan.StudentDim ?? Math.Max(1, RunDirectory.ReadRecord(teachers[teacherIndex]).Model.Dim / 10);
                    session = TeacherSession.Open(teachers[teacherIndex], plan.Compute, plan.Teachers is null ? plan.Data : null, studentDim, reporter);
                    sessionTeacher = teacherIndex;
                }
                int left = jobs.Skip(j).Count(x => !Done(x));
                string eta = durations.Count == 0 ? "ETA after the first run" : $"ETA {TimeSpan.FromSeconds(durations.Average() * left):hh\\:mm\\:ss} for {ComparisonReport.Count(left, "run")}";
                var output = RunOf(dir, plan);
                reporter.Message($"run {j + 1}/{jobs.Count}: {method} seed {k}{(output.Resume ? " (resuming)" : "")} - {eta}");
                var runClock = Stopwatch.StartNew();
                try
                {
                    var (train, options) = SettingsOfRun(plan, method, k, session!.Backbone);
                    session.Distill(method, train, options, output, cancellationToken);
                    ComparisonReport.WriteRecord(plan.Records, RunSummary.FromRunDirectory(dir, method, k));
                    claim.Release();
                    durations.Add(runClock.Elapsed.TotalSeconds);
                }
                // A stop is no failure of the run: it ends the comparison, and the run keeps its checkpoint.
                catch (Exception e) when (e is not OutOfMemoryException && !(e is OperationCanceledException && cancellationToken.IsCancellationRequested))
                {
                    // One failing run is reported; the others go on, and its checkpoint (if any) stays for a retry.
                    var message = $"{method} seed {k}: {e.GetType().Name}: {e.Message}";
                    failures.Add(message);
                    AtomicFile.WriteText(Path.Combine(dir, "error.txt"), e.ToString());
                    reporter.Message("failed: " + message);
                }
                ComparisonReport.Write(plan.OutDir, title, ComparisonReport.ReadRecords(plan.Records), plan.Methods, failures, charts);
            }
        }
        finally
        {
            session?.Dispose();
        }
        var md = ComparisonReport.Write(plan.OutDir, title, ComparisonReport.ReadRecords(plan.Records), plan.Methods, failures, charts);
        return new ComparisonOutcome(plan.OutDir, md, failures, clock.Elapsed);
    }

    /// <summary>
    /// Checks a plan before anything is trained or written, and refuses it with every problem named: an
    /// unknown method, a teacher run that is not finished, and an OUT directory whose teacher or finished
    /// runs were made with other settings; options out of range (the plan's <see cref="ComparisonPlan.Seeds"/>,
    /// <see cref="ComparisonPlan.StudentDim"/>, data, teacher shape, training, compute or a method's tuned settings) are an
    /// <see cref="ArgumentException"/> or <see cref="UserErrorException"/> that names them. <see cref="Run"/> calls it first; a caller that writes files of
    /// its own into OUT (the CLI's resume.json) calls it before them.
    /// </summary>
    public static void Check(ComparisonPlan plan)
    {
        if (plan.Methods.Count == 0) throw new ArgumentException("a comparison needs at least one method");
        foreach (var m in plan.Methods)
            if (!DistillationMethods.IsKnown(m)) throw new UserErrorException($"'{m}' is not one of {string.Join(", ", DistillationMethods.AllNames)}");
        if (plan.Methods.GroupBy(m => m.ToLowerInvariant()).FirstOrDefault(g => g.Count() > 1) is { } twice)
            throw new ArgumentException($"method '{twice.Key}' is named more than once in Methods", nameof(plan));
        if (plan.Teachers is { Count: 0 }) throw new ArgumentException("Teachers is empty: give at least one teacher run, or null to train one");
        // Options out of range are refused here, before OUT is made: found by the runs, they failed each run in turn
        // (error.txt in every run directory, a report of failures) or stopped the teacher after OUT and its records were written.
        if (plan.Teachers is null)
        {
            if (plan.Seeds < 1)
                throw new ArgumentException($"ComparisonPlan.Seeds must be at least 1 (not {plan.Seeds})", nameof(ComparisonPlan.Seeds));
            plan.Data.Validate();
            plan.Teacher.Validate();
        }
        plan.Train.Validate();
        plan.Compute.Validate();
        if (File.Exists(plan.OutDir)) throw new UserErrorException($"{plan.OutDir} is a file, not a directory: a comparison is written into a directory");
        foreach (var t in plan.Teachers ?? [])
        {
            if (!RunDirectory.IsFinished(t)) throw new UserErrorException($"teacher {t} holds no finished run (metrics.json is missing)");
            RunDirectory.CheckIsTeacher(t);
        }
        if (plan.Teachers is { Count: > 1 } && TeachersDiffer(plan.Teachers) is { } mixed) throw new UserErrorException(mixed);
        // Every method's settings as its runs will have them (tuned or default), on the students' shape.
        var given = plan.Teachers is null ? null : RunDirectory.ReadRecord(plan.Teachers[0]).Model;
        var teacherShape = given is null ? plan.Teacher : new ModelShape(given.Backbone, given.Dim, given.Layers);
        var studentShape = teacherShape with { Dim = TeacherSession.StudentDimOf(plan.StudentDim, teacherShape.Dim, "ComparisonPlan.StudentDim") };
        foreach (var m in plan.Methods)
        {
            var (train, options) = SettingsOf(plan, m, plan.Train, studentShape.Backbone);
            TeacherSession.Check(m, options, train, studentShape);
        }
        // A damaged teacher model would fail only when its first run starts, after OUT and its records were written.
        foreach (var t in plan.Teachers ?? [])
            ModelFile.Read(Path.Combine(t, ModelFile.FileName));
        var teachers = plan.Teachers ?? new[] { Path.Combine(plan.OutDir, "teacher") };
        var problems = new List<string>();
        if (plan.Teachers is null && OwnTeacherDifferences(plan, teachers[0]) is { } teacher) problems.Add(teacher);
        problems.AddRange(FinishedRunDifferences(plan, Jobs(plan), teachers));
        if (problems.Count > 0)
            throw new UserErrorException($"{plan.OutDir} holds finished runs made with other settings than this comparison's: " +
                string.Join(", ", problems) + $". Give another --out, or delete those runs' directories (under {plan.OutDir}) and records (in {plan.Records}) to train them again");
    }

    /// <summary>
    /// How a comparison's teachers differ (backbone, dimension, layers, data), or null: one table over teachers of
    /// several kinds would average runs that are not alike, under a title that names one kind.
    /// </summary>
    private static string? TeachersDiffer(IReadOnlyList<string> teachers)
    {
        static string Kind(RunRecord r) =>
            $"{r.Model.Backbone.ToString().ToLowerInvariant()} d={r.Model.Dim}{(r.Model.Backbone == Models.Backbone.LightGcn ? $" {r.Model.Layers} layers" : "")}";
        var records = teachers.Select(RunDirectory.ReadRecord).ToList();
        var kinds = records.Select(Kind).ToList();
        if (kinds.Distinct().Count() > 1)
            return "the teachers are of different kinds (" + string.Join(", ", teachers.Select((t, i) => $"{t}: {kinds[i]}")) + "): give teachers of one backbone and dimension";
        var data = records.Select(r => JsonSerializer.Serialize(r.Data.WithFullPath() with { Seed = 0 }, JsonOptions.Default)).ToList();
        // The data's seed may differ (a teacher's seed is the split's seed for random splits); the rest may not.
        int other = data.FindIndex(d => d != data[0]);
        return other < 0 ? null : $"teachers {teachers[0]} and {teachers[other]} were trained on different data or splits: give teachers of one dataset";
    }

    private static List<(string Method, int SeedIndex)> Jobs(ComparisonPlan plan) =>
        (from k in Enumerable.Range(1, plan.RunsPerMethod) from m in plan.Methods select (Method: m, SeedIndex: k)).ToList();

    /// <summary>
    /// How OUT/teacher differs from the plan's teacher (backbone, dimension, layer count, training option,
    /// dataset), or null: reusing another teacher, the table would name one teacher and hold another.
    /// </summary>
    private static string? OwnTeacherDifferences(ComparisonPlan plan, string dir)
    {
        if (!RunDirectory.IsFinished(dir)) return null;
        var record = RunDirectory.ReadRecord(dir);
        JsonObject Settings(Models.Backbone backbone, int dim, int layers, TrainOptions train, DataOptions data) => new()
        {
            ["model"] = new JsonObject
            {
                ["backbone"] = backbone.ToString(), ["dim"] = dim,
                ["layers"] = backbone == Models.Backbone.LightGcn ? layers : 0, // BPR has none, whatever was asked
            },
            ["train"] = JsonSerializer.SerializeToNode(train, JsonOptions.Default),
            ["data"] = JsonSerializer.SerializeToNode(data.WithFullPath(), JsonOptions.Default),
        };
        var recorded = Settings(record.Model.Backbone, record.Model.Dim, record.Model.Layers, record.Train, record.Data);
        var wanted = Settings(plan.Teacher.Backbone, plan.Teacher.Dim, plan.Teacher.Layers, plan.Train, plan.Data);
        var differences = SettingsDiff.Of(recorded, wanted, commonOnly: true);
        return differences.Count == 0 ? null : $"teacher ({Summary(differences)})";
    }

    private static string Summary(IReadOnlyList<(string Key, string? There, string? Here)> differences) =>
        string.Join("; ", differences.Take(3).Select(d => SettingsDiff.Describe(d))) + (differences.Count > 3 ? $"; {differences.Count - 3} more" : "");

    /// <summary>
    /// The plan's finished runs, and its runs known only by a record in <see cref="ComparisonPlan.Records"/>, made
    /// with other settings (another teacher, student dimension, seed, training option or method setting), each with
    /// what differs: reusing them would report runs this plan did not ask for. Settings a run's record lacks (older
    /// builds) are not compared.
    /// </summary>
    private static List<string> FinishedRunDifferences(ComparisonPlan plan, IReadOnlyList<(string Method, int SeedIndex)> jobs, IReadOnlyList<string> teachers)
    {
        var problems = new List<string>();
        var teacherModels = new Dictionary<string, (Models.Backbone Backbone, int Dim)>();
        foreach (var (method, k) in jobs)
        {
            var dir = RunDir(plan, method, k);
            var recordFile = Path.Combine(plan.Records, $"{method}-seed{k}.json");
            bool finished = RunDirectory.IsFinished(dir);
            if (!finished && !File.Exists(recordFile)) continue;
            var teacher = teachers[plan.Teachers is null ? 0 : k - 1];
            // A teacher trained here may not exist yet (its directory deleted): it will have the plan's backbone and dimension.
            if (!teacherModels.TryGetValue(teacher, out var model))
                teacherModels[teacher] = model = RunDirectory.IsFinished(teacher) && RunDirectory.ReadRecord(teacher).Model is var m
                    ? (m.Backbone, m.Dim)
                    : (plan.Teacher.Backbone, plan.Teacher.Dim);
            var (train, options) = SettingsOfRun(plan, method, k, model.Backbone);
            options ??= DistillationOptions.Defaults(method, model.Backbone);
            var wanted = new JsonObject
            {
                ["dim"] = plan.StudentDim ?? Math.Max(1, model.Dim / 10),
                ["train"] = JsonSerializer.SerializeToNode(train, JsonOptions.Default),
                ["teacher"] = Path.TrimEndingDirectorySeparator(Path.GetFullPath(teacher)),
                ["options"] = JsonSerializer.SerializeToNode(options, JsonOptions.Default),
            };
            JsonObject recorded;
            string what;
            if (finished)
            {
                recorded = RecordedSettings(dir);
                what = $"{method} seed {k}";
            }
            else
            {
                var record = JsonSerializer.Deserialize<RunSummary>(File.ReadAllText(recordFile), JsonOptions.Default)!;
                recorded = record.Settings?.DeepClone() as JsonObject ?? new JsonObject();
                recorded["dim"] = record.Dim;
                // Records of earlier builds hold no settings but the seed and the dimension.
                if (record.Settings is null) recorded["train"] = new JsonObject { ["seed"] = record.Seed };
                what = $"{method} seed {k} recorded in {recordFile}";
            }
            var differences = SettingsDiff.Of(recorded, wanted, commonOnly: true);
            if (differences.Count > 0) problems.Add($"{what} ({Summary(differences)})");
        }
        return problems;
    }

    /// <summary>
    /// What a finished distillation run was made with, as a comparison checks it: the student's dimension, its
    /// training options, its teacher (full path) and its method's options (metrics.json's distillation block).
    /// </summary>
    internal static JsonObject RecordedSettings(string dir)
    {
        var run = RunDirectory.ReadRecord(dir);
        var metrics = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, RunDirectory.MetricsFile)))?["distillation"] as JsonObject;
        return new JsonObject
        {
            ["dim"] = run.Model.Dim,
            ["train"] = JsonSerializer.SerializeToNode(run.Train, JsonOptions.Default),
            ["teacher"] = metrics?["teacher"]?.GetValue<string>() is { } t ? Path.TrimEndingDirectorySeparator(t) : null,
            ["options"] = metrics?["options"]?.DeepClone(),
        };
    }

    /// <summary>A method's k-th run directory in the comparison.</summary>
    public static string RunDir(ComparisonPlan plan, string method, int seedIndex) => Path.Combine(plan.OutDir, "runs", $"{method}-seed{seedIndex}");

    /// <summary>
    /// A teacher's record; a teacher trained before runs kept per-user metrics has them computed here
    /// (into the record only: the teacher's directory is not touched).
    /// </summary>
    private static RunSummary TeacherSummary(string dir, int seedIndex, ComparisonPlan plan, IRunReporter reporter, CancellationToken cancellationToken)
    {
        var summary = RunSummary.FromRunDirectory(dir, RunSummary.TeacherMethod, seedIndex);
        if (summary.TestNdcg20ByUser is not null) return summary;
        var test = reporter.Step($"Per-user test metrics of {dir}", () => Workflow.Evaluate(dir, plan.Compute, cancellationToken: cancellationToken).Test);
        return summary with { TestNdcg20ByUser = test.PerUser["ndcg@20"], TestUsersHash = RunSummary.UsersHash(test.EvaluatedUsers) };
    }

    private static RunOutput RunOf(string dir, ComparisonPlan plan) => new(dir)
    {
        Overwrite = true, Resume = File.Exists(RunDirectory.CheckpointPath(dir)), Command = "compare", CommandLine = plan.CommandLine,
    };
}
