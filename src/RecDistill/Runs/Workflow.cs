using System.Text.Json;
using System.Text.Json.Nodes;
using RecDistill.Data;
using RecDistill.Distillation;
using RecDistill.Evaluation;
using RecDistill.Models;
using RecDistill.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace RecDistill.Runs;

/// <summary>The model a run trains: backbone, embedding dimension and (LightGCN) propagation layers.</summary>
public sealed record ModelShape(Backbone Backbone, int Dim, int Layers = 3)
{
    /// <summary>Throws <see cref="ArgumentException"/> for a dimension below 1 or negative layers.</summary>
    internal void Validate()
    {
        if (Dim < 1) throw new ArgumentException($"ModelShape.Dim must be at least 1 (not {Dim})", nameof(Dim));
        if (Layers < 0) throw new ArgumentException($"ModelShape.Layers must be 0 or more (not {Layers})", nameof(Layers));
    }
}

/// <summary>Where a run is written, and whether it continues an interrupted one.</summary>
public sealed record RunOutput(string Dir)
{
    /// <summary>Write into a directory that already holds a run: its files are deleted before the new run trains (not those of a run resumed from its checkpoint).</summary>
    public bool Overwrite { get; init; }
    /// <summary>
    /// Continue from the directory's checkpoint (from the first epoch when it has none yet: a new or empty
    /// directory, or a run stopped before its first checkpoint). A finished run (metrics.json, no
    /// checkpoint) is refused unless <see cref="Overwrite"/> is set, which trains it again.
    /// </summary>
    public bool Resume { get; init; }
    /// <summary>The workflow recorded in run.json: train, distill, compare, demo; default (null): the workflow's own, train or distill.</summary>
    public string? Command { get; init; }
    /// <summary>What metrics.json records as the command (the CLI's whole command line); default: <see cref="Command"/>.</summary>
    public string? CommandLine { get; init; }
    /// <summary>Called once the directory is ready and before training (the CLI records its arguments for --resume there).</summary>
    public Action<string>? OnPrepared { get; init; }
}

/// <summary>
/// A saved run evaluated: its metrics, and the same as metrics.json has them. <paramref name="TestHeldOut"/>: the run was
/// trained without its test set (a search's trial, distill --no-test) and the test was not scored (<paramref name="Test"/>
/// has no users).
/// </summary>
public sealed record RunEvaluation(string Dataset, long Parameters, EvaluationResult Valid, EvaluationResult Test, JsonObject Json,
    bool TestHeldOut = false);

/// <summary>What a run measured (its model is in the run directory when one was written).</summary>
public sealed record RunResult(string Label, string? Dir, long Parameters, TrainResult Train, EvaluationResult Valid, EvaluationResult Test);

/// <summary>
/// The workflows a user runs: train a model, distil a student from a saved teacher, evaluate a saved run.
/// Every random draw of a run follows from its <see cref="TrainOptions.Seed"/> alone (see <see cref="Run"/>).
/// </summary>
/// <remarks>
/// A workflow changes the whole process: torch.manual_seed and torch.set_num_threads are process-wide,
/// so the workflows of one process (these, <see cref="TeacherSession"/>'s, <see cref="Comparison.Run"/>
/// and <see cref="Tuning.Tune"/>) take one process-wide lock and run one at a time: calls from several
/// threads wait for each other and give the numbers they would give alone. A run restarts the process's
/// peak-memory counter (Linux: /proc/self/clear_refs, for metrics.json's peak_memory_mb), and the first
/// one sets glibc's malloc options so that freed memory is kept for reuse for the life of the process
/// (<see cref="ComputeOptions"/>).
/// <para>
/// Every workflow takes an optional <see cref="CancellationToken"/>. Training checks it before every batch;
/// once it is cancelled the run stops and the call throws <see cref="OperationCanceledException"/>. The run
/// directory keeps its last whole checkpoint.bin (written at every validation and at least once a minute, and
/// at the end of the epoch when the stop came after its batches) and gets no metrics.json, so a call with
/// <see cref="RunOutput.Resume"/> continues it to the numbers of an uninterrupted run. Evaluation checks the
/// token between user batches; a comparison or a search also stops between its runs and keeps the finished ones.
/// Steps that do not check it (loading data, a method's teacher lists) run to their end first; a stop asked for by then
/// ends the run before its directory is made (<see cref="RunOutput.OnPrepared"/> is not called), so a run that
/// <see cref="RunOutput.Overwrite"/> would replace is left as it was.
/// </para>
/// </remarks>
public static class Workflow
{
    /// <summary>
    /// Held by every workflow while it runs: torch's seed and thread count are the process's, so two runs
    /// at once would draw from each other's seeds. Re-entrant: a comparison runs trainings inside it.
    /// </summary>
    internal static readonly Lock RunLock = new();

    /// <summary>Loads, cleans and splits the data as a reported step.</summary>
    public static SplitDataset LoadData(DataOptions options, IRunReporter? reporter = null) =>
        (reporter ?? SilentReporter.Instance).Step($"Loading {Describe(options)}", () => DatasetLoader.Load(options));

    /// <summary>A short description of the data for messages: path and format, or the synthetic data's size and generator seed.</summary>
    public static string Describe(DataOptions o) =>
        o.Format == DataFormat.Synthetic
            ? $"synthetic data ({o.Synthetic.Users} users, {o.Synthetic.Items} items, generator seed {o.Synthetic.Seed})"
            : $"{o.Path} ({o.Format.ToString().ToLowerInvariant()})";

    /// <summary>Trains one model (a teacher, or any BPR-MF / LightGCN model) with early stopping and evaluates its best weights.</summary>
    public static RunResult Train(DataOptions data, ModelShape model, TrainOptions train, RunOutput? output = null,
        ComputeOptions? compute = null, IRunReporter? reporter = null, CancellationToken cancellationToken = default)
    {
        using var runLock = RunLock.EnterScope();
        cancellationToken.ThrowIfCancellationRequested();
        reporter ??= SilentReporter.Instance;
        compute ??= ComputeOptions.Cpu;
        data.Validate();
        train.Validate();
        model.Validate();
        var device = compute.Resolve();
        // Refused before the data is read, made only once it loaded (by Run): a data error leaves no directory behind.
        if (output is not null) Refuse(output);
        var split = LoadData(data, reporter);
        Trainer.CheckSplit(split);
        return Run($"{Name(model.Backbone)} d={model.Dim}", split, data, model, train, output, device, compute.Kernels, reporter, null,
            cancellationToken);
    }

    /// <summary>
    /// Distils a student from the teacher saved in <paramref name="teacherDir"/> (see <see cref="TeacherSession"/> for several students).
    /// <paramref name="withoutTest"/>: the split loses its test set before anything sees it, as in tuning (a run for
    /// diagnostics or a search of one's own; its metrics have no test).
    /// </summary>
    public static RunResult Distill(string teacherDir, string method, TrainOptions train, DistillationOptions? options = null,
        int? studentDim = null, RunOutput? output = null, ComputeOptions? compute = null, DataOptions? data = null,
        IRunReporter? reporter = null, bool withoutTest = false, CancellationToken cancellationToken = default)
    {
        using var runLock = RunLock.EnterScope();
        cancellationToken.ThrowIfCancellationRequested();
        reporter ??= SilentReporter.Instance;
        var record = RunDirectory.ReadRecord(teacherDir);
        int dim = TeacherSession.StudentDimOf(studentDim, record.Model.Dim);
        // Everything that can be refused is, before the output directory is made.
        (method, options) = TeacherSession.Check(method, options, train, new ModelShape(record.Model.Backbone, dim, record.Model.Layers));
        data?.Validate();
        (compute ?? ComputeOptions.Cpu).Validate();
        if (output is not null) Refuse(output);
        // The session checks the data against the teacher's (the same ids) and reads its model: a refusal there
        // leaves no output directory behind either.
        using var session = TeacherSession.Open(teacherDir, compute, data, dim, reporter, withoutTest);
        return session.Distill(method, train, options, output, cancellationToken);
    }

    /// <summary>Validation and test metrics of a saved run, on its own data (or <paramref name="data"/>); the token is checked between user batches.</summary>
    public static RunEvaluation Evaluate(string runDir, ComputeOptions? compute = null, DataOptions? data = null, IRunReporter? reporter = null,
        CancellationToken cancellationToken = default) =>
        Evaluate(runDir, compute, data, reporter, scoreHeldOutTest: false, cancellationToken);

    /// <summary>
    /// As above. A run trained without its test set (a search's trial, distill --no-test) keeps it held out: its test is
    /// scored only when <paramref name="scoreHeldOutTest"/> is true, so that a look at a run chosen on validation does
    /// not show its test by the way (<see cref="RunEvaluation.TestHeldOut"/>).
    /// </summary>
    public static RunEvaluation Evaluate(string runDir, ComputeOptions? compute, DataOptions? data, IRunReporter? reporter,
        bool scoreHeldOutTest, CancellationToken cancellationToken = default)
    {
        using var runLock = RunLock.EnterScope();
        cancellationToken.ThrowIfCancellationRequested();
        compute ??= ComputeOptions.Cpu;
        using var kernels = KernelSwitch.Use(compute.Kernels);
        var (_, dataOptions, split, model) = RunDirectory.Load(runDir, compute, data, reporter);
        using var _model = model;
        bool heldOut = !scoreHeldOutTest && split.TestCount > 0 && RunDirectory.TrainedWithoutTest(runDir);
        if (heldOut) split = Tuning.WithoutTest(split);
        var evaluator = new FullRankingEvaluator(split);
        var valid = evaluator.Evaluate(model, EvalSplit.Valid, cancellationToken);
        var test = evaluator.Evaluate(model, EvalSplit.Test, cancellationToken);
        var json = RunDirectory.MetricsJson(split, model, null, valid, test, dataOptions.Seed);
        if (heldOut) json["test_held_out"] = true;
        return new RunEvaluation(split.Name, model.ParameterCount, valid, test, json, heldOut);
    }

    internal static string Name(Backbone b) => b == Backbone.LightGcn ? "lightgcn" : "bpr";

    /// <summary>Refuses an old run's directory (unless overwriting or resuming it) and a finished one's resume; then the caller's hook.</summary>
    internal static void Prepare(RunOutput output, IRunReporter reporter)
    {
        Refuse(output);
        if (output.Resume && !File.Exists(RunDirectory.CheckpointPath(output.Dir)))
            reporter.Message($"{output.Dir} has no checkpoint yet: the run starts from its first epoch");
        RunDirectory.PrepareOut(output.Dir, output.Overwrite || output.Resume);
        // A run that starts over replaces the old one's files now: kept until the end, they would pass for
        // the new run's while it trains (or for good, when it writes none, as test-users.csv without a test).
        if (output.Overwrite && !(output.Resume && File.Exists(RunDirectory.CheckpointPath(output.Dir)))) RunDirectory.ClearResults(output.Dir);
        if (output.Resume) reporter.Message($"resuming {output.Dir}");
        output.OnPrepared?.Invoke(output.Dir);
    }

    /// <summary>What <see cref="Prepare"/> refuses, checked without writing anything.</summary>
    internal static void Refuse(RunOutput output)
    {
        // Without a checkpoint a resume starts from the first epoch, which would train a finished run again.
        if (output.Resume && !output.Overwrite && RunDirectory.IsFinished(output.Dir) && !File.Exists(RunDirectory.CheckpointPath(output.Dir)))
            throw new UserErrorException($"{output.Dir} already finished (metrics.json is written); nothing to resume");
        RunDirectory.CheckOut(output.Dir, output.Overwrite || output.Resume);
    }

    /// <summary>
    /// The one recipe of every run: seed, the method's own parameters, seed again, the model's initial
    /// weights, train with early stopping, evaluate the best weights, write the run. Seeding right before
    /// each draw makes the method's and the model's initial values depend on the seed alone, not on what
    /// ran before in the process (a comparison's tenth run starts as a lone run with its seed would); the
    /// trainer seeds every epoch itself. The output directory is prepared (<see cref="Prepare"/>) once the method is
    /// made and the token checked, so that a stop asked for while the data loaded or the method's lists were made leaves
    /// it as it was (an old run to overwrite included). A cancelled run writes no metrics.json: the trainer's checkpoint
    /// (marked finished when training ended) lets a resume train what is left and evaluate.
    /// </summary>
    internal static RunResult Run(string label, SplitDataset data, DataOptions dataOptions, ModelShape shape, TrainOptions train,
        RunOutput? output, Device device, KernelChoice kernels, IRunReporter reporter,
        (DistillationContext Context, string Method, DistillationOptions Options)? distill, CancellationToken cancellationToken)
    {
        using var kernelScope = KernelSwitch.Use(kernels);
        bool peakKnown = PeakMemory.Restart();
        torch.manual_seed(train.Seed);
        using var method = distill is { } d && d.Method != "scratch"
            ? reporter.Step($"Preparing {d.Method} (teacher top-K lists, neighbours)", () => DistillationMethods.Create(d.Options, d.Context))
            : null;
        cancellationToken.ThrowIfCancellationRequested();
        if (output is not null) Prepare(output, reporter);
        torch.manual_seed(train.Seed);
        using var model = ModelFile.Create(new ModelConfig(shape.Backbone, shape.Dim, shape.Layers, data.NumUsers, data.NumItems), data, device);
        var result = reporter.Train(label, train.MaxEpochs, progress => new Trainer(train)
        {
            CheckpointPath = output is null ? null : RunDirectory.ModelPath(output.Dir),
            StatePath = output is null ? null : RunDirectory.CheckpointPath(output.Dir),
            Resume = output?.Resume ?? false,
            Progress = progress,
            // A scratch student learns nothing from the teacher: another teacher may continue it.
            RunSettings = RunSettings(dataOptions, distill?.Options, distill is { Method: not "scratch" } t ? t.Context.TeacherModelSha256 : null),
        }.Fit(model, data, method, cancellationToken));
        var evaluator = new FullRankingEvaluator(data);
        // A split without a test set (tuning's) is never evaluated on one.
        var test = data.TestCount == 0 ? new EvaluationResult(new Dictionary<string, double>(), 0) : evaluator.Evaluate(model, EvalSplit.Test, cancellationToken);
        var outcome = new RunOutcome(model, result, evaluator.Evaluate(model, EvalSplit.Valid, cancellationToken), test);
        if (output is not null)
        {
            var extra = distill is { } x ? DistillationRecord(x.Method, x.Context, model, x.Options, method) : new JsonObject();
            extra["kernels"] = kernels.ToString();
            // Peak resident memory of the process while it prepared, trained and evaluated this run
            // (a resumed run: since its last resume).
            if (peakKnown && PeakMemory.Megabytes() is { } peak) extra["peak_memory_mb"] = Math.Round(peak, 1);
            string command = output.Command ?? (distill is null ? "train" : "distill");
            RunDirectory.Write(output.Dir, command, output.CommandLine ?? command, dataOptions, train, data, outcome, extra);
        }
        return new RunResult(label, output?.Dir, model.ParameterCount, result, outcome.Valid, outcome.Test);
    }

    /// <summary>
    /// What a checkpoint must have been written with beside the trainer's own settings: the data options
    /// (the path made absolute, as a CLI resume gives it), the method's settings and its teacher's model
    /// (a teacher retrained in its directory would otherwise teach the rest of the run).
    /// </summary>
    private static JsonObject RunSettings(DataOptions data, DistillationOptions? options, string? teacherSha256)
    {
        var settings = new JsonObject
        {
            ["data"] = JsonSerializer.SerializeToNode(data.WithFullPath(), JsonOptions.Default),
        };
        if (options is not null) settings["distillation"] = JsonSerializer.SerializeToNode(options, JsonOptions.Default);
        if (teacherSha256 is not null) settings["teacher_model_sha256"] = teacherSha256;
        return settings;
    }

    /// <summary>The "distillation" object of a student's metrics.json.</summary>
    private static JsonObject DistillationRecord(string method, DistillationContext ctx, IRecommender student,
        DistillationOptions options, IDistillationMethod? kd)
    {
        var teacher = ctx.Teacher;
        long teacherParams = (long)(teacher.NumUsers + teacher.NumItems) * teacher.Dim;
        return new JsonObject
        {
            ["distillation"] = new JsonObject
            {
                ["method"] = method,
                ["teacher"] = ctx.TeacherDir is null ? null : Path.GetFullPath(ctx.TeacherDir),
                ["teacher_dim"] = teacher.Dim,
                ["student_dim"] = student.Dim,
                ["compression"] = Math.Round((double)student.ParameterCount / teacherParams, 4),
                ["options"] = JsonSerializer.SerializeToNode(options, JsonOptions.Default),
                ["last_epoch_diagnostics"] = kd is null ? null : new JsonObject(kd.EpochDiagnostics.Select(kv =>
                    KeyValuePair.Create(kv.Key, (JsonNode?)JsonValue.Create(double.IsFinite(kv.Value) ? Math.Round(kv.Value, 6) : (double?)null)))),
            },
        };
    }
}

/// <summary>
/// A saved teacher loaded once with its data and the lists the methods draw on, for distilling one or
/// several students (a comparison runs every method and seed against one session).
/// </summary>
public sealed class TeacherSession : IDisposable
{
    private readonly FrozenTeacher _teacher;
    private readonly DistillationContext _context;
    private readonly Device _device;
    private readonly ComputeOptions _compute;
    private readonly IRunReporter _reporter;
    private bool _disposed;

    private TeacherSession(RunRecord record, DataOptions dataOptions, SplitDataset data, FrozenTeacher teacher,
        DistillationContext context, Device device, ComputeOptions compute, IRunReporter reporter)
    {
        TeacherRecord = record; DataOptions = dataOptions; Data = data; _teacher = teacher; _context = context;
        _device = device; _compute = compute; _reporter = reporter;
    }

    /// <summary>The teacher's run record (its backbone, dimension and layers are the students').</summary>
    public RunRecord TeacherRecord { get; }
    /// <summary>The data options the session loaded (the teacher's own unless others were given).</summary>
    public DataOptions DataOptions { get; }
    /// <summary>The split the teacher and every student use.</summary>
    public SplitDataset Data { get; }
    /// <summary>Embedding dimension of the students.</summary>
    public int StudentDim => _context.StudentDim;
    /// <summary>The teacher's backbone, which the students share.</summary>
    public Backbone Backbone => TeacherRecord.Model.Backbone;
    /// <summary>The teacher's parameters: (users + items) x dimension.</summary>
    public long TeacherParameters => (long)(_teacher.NumUsers + _teacher.NumItems) * _teacher.Dim;

    /// <summary>Loads the teacher of <paramref name="teacherDir"/> on its own data (or <paramref name="data"/>); students of <paramref name="studentDim"/> (default a tenth of the teacher's).</summary>
    public static TeacherSession Open(string teacherDir, ComputeOptions? compute = null, DataOptions? data = null,
        int? studentDim = null, IRunReporter? reporter = null) =>
        Open(teacherDir, compute, data, studentDim, reporter, withoutTest: false);

    /// <summary><paramref name="withoutTest"/>: the split loses its test set before anything sees it (tuning).</summary>
    internal static TeacherSession Open(string teacherDir, ComputeOptions? compute, DataOptions? data,
        int? studentDim, IRunReporter? reporter, bool withoutTest)
    {
        using var runLock = Workflow.RunLock.EnterScope();
        reporter ??= SilentReporter.Instance;
        var record = RunDirectory.ReadRecord(teacherDir);
        // Before the data and the teacher load: a bad dimension would otherwise fail only at the first Distill.
        int dim = StudentDimOf(studentDim, record.Model.Dim);
        compute ??= ComputeOptions.Cpu;
        var device = compute.Resolve();
        using var kernels = KernelSwitch.Use(compute.Kernels);
        data?.Validate();
        var dataOptions = data ?? RunDirectory.RecordedData(teacherDir, record);
        var split = Workflow.LoadData(dataOptions, reporter);
        if (data is not null) RunDirectory.CheckSameIds(teacherDir, split, data);
        if (withoutTest) split = Tuning.WithoutTest(split);
        var teacherSha256 = RunDirectory.ModelSha256(teacherDir);
        var teacher = FrozenTeacher.Load(RunDirectory.ModelPath(teacherDir), split, device);
        var context = new DistillationContext(teacher, split, dim, device)
            { TeacherDir = teacherDir, TeacherModelSha256 = teacherSha256 };
        return new TeacherSession(record, dataOptions, split, teacher, context, device, compute, reporter);
    }

    /// <summary>
    /// The students' dimension: <paramref name="studentDim"/>, or a tenth of the teacher's (at least 1) when null. One below 1
    /// is an <see cref="ArgumentException"/> that names <paramref name="name"/>, the caller's own argument or property.
    /// </summary>
    internal static int StudentDimOf(int? studentDim, int teacherDim, string name = "studentDim")
    {
        if (studentDim is < 1) throw new ArgumentException($"{name} must be at least 1 (not {studentDim})", name[(name.LastIndexOf('.') + 1)..]);
        return studentDim ?? Math.Max(1, teacherDim / 10);
    }

    /// <summary>
    /// Trains one student with <paramref name="method"/> (scratch, kd, rd, cd, de, rrd, htd, nkd, cpd, sld, mkd);
    /// <paramref name="cancellationToken"/> stops it as <see cref="Workflow"/>'s remarks say.
    /// </summary>
    /// <exception cref="ObjectDisposedException">The session is disposed.</exception>
    public RunResult Distill(string method, TrainOptions train, DistillationOptions? options = null, RunOutput? output = null,
        CancellationToken cancellationToken = default)
    {
        using var runLock = Workflow.RunLock.EnterScope();
        // The teacher's tensors are freed: a method would fail on an empty handle, and scratch would train on regardless.
        ObjectDisposedException.ThrowIf(_disposed, this);
        cancellationToken.ThrowIfCancellationRequested();
        var shape = new ModelShape(Backbone, StudentDim, TeacherRecord.Model.Layers);
        (method, options) = Check(method, options, train, shape);
        // Checked here, made by Run once the method is ready.
        if (output is not null) Workflow.Refuse(output);
        // Another workflow may have set other threads since the session opened.
        _compute.Resolve();
        return Workflow.Run($"{method} d={StudentDim}", Data, DataOptions, shape, train, output, _device, _compute.Kernels, _reporter,
            (_context, method, options), cancellationToken);
    }

    /// <summary>
    /// The method's name in lower case and the options it runs with: the given ones (or the method's
    /// defaults on the backbone) with their <see cref="DistillationOptions.Method"/> set to it, so that the
    /// argument decides, never a default left in the options. Throws for an unknown method
    /// (<see cref="UserErrorException"/>) or options, training settings or shape out of range (<see cref="ArgumentException"/>).
    /// </summary>
    internal static (string Method, DistillationOptions Options) Check(string method, DistillationOptions? options,
        TrainOptions train, ModelShape shape)
    {
        method = method.ToLowerInvariant();
        if (!DistillationMethods.IsKnown(method))
            throw new UserErrorException($"'{method}' is not one of {string.Join(", ", DistillationMethods.AllNames)}");
        options = (options ?? DistillationOptions.Defaults(method, shape.Backbone)) with { Method = method };
        DistillationMethods.Validate(options);
        train.Validate();
        shape.Validate();
        return (method, options);
    }

    /// <summary>
    /// Frees the teacher and its lists; a second call does nothing. It waits for a <see cref="Distill"/> running on
    /// another thread (the process-wide workflow lock), and a later <see cref="Distill"/> throws <see cref="ObjectDisposedException"/>.
    /// </summary>
    public void Dispose()
    {
        using var runLock = Workflow.RunLock.EnterScope();
        if (_disposed) return;
        _disposed = true;
        _context.Dispose();
        _teacher.Dispose();
    }
}
