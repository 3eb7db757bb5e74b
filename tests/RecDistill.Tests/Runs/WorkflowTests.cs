using System.Text.Json.Nodes;
using RecDistill.Data;
using RecDistill.Distillation;
using RecDistill.Models;
using RecDistill.Runs;
using RecDistill.Training;

namespace RecDistill.Tests.Runs;

public class WorkflowTests
{
    private static readonly DataOptions Tiny = TestData.TinySynthetic(5);
    private static readonly TrainOptions Short = TestData.ShortTraining(5);

    /// <summary>One teacher for the tests of this class (trained once).</summary>
    private static readonly Lazy<string> Teacher = new(() =>
    {
        var dir = Path.Combine(TestData.TempDir(), "teacher");
        Workflow.Train(Tiny, new ModelShape(Backbone.Bpr, 16), Short, new RunOutput(dir));
        return dir;
    });

    private static JsonNode Json(string dir, string file) => JsonNode.Parse(File.ReadAllText(Path.Combine(dir, file)))!;

    private static string[] HistoryHeader(string dir) => File.ReadLines(Path.Combine(dir, RunDirectory.HistoryFile)).First().Split(',');

    /// <summary>Stops a run at its validation of <paramref name="epoch"/>, before that epoch's state is written (the previous validation's is kept).</summary>
    private sealed class Interrupting(int epoch) : IRunReporter
    {
        public void Message(string text) { }
        public T Step<T>(string description, Func<T> work) => work();
        public TrainResult Train(string label, int maxEpochs, Func<Action<TrainingProgress>, TrainResult> fit) =>
            fit(p => { if (p.AfterValidation && p.Epoch >= epoch) throw new OperationCanceledException("stopped at epoch " + p.Epoch); });
    }

    [Fact]
    public void The_method_argument_decides_even_when_the_options_name_another()
    {
        var root = TestData.TempDir();
        // DistillationOptions.Method is "mkd" unless set: the run must still be KD.
        var options = new DistillationOptions { Kd = new KdOptions { Lambda = 0.5 } };
        var viaWorkflow = Path.Combine(root, "kd");
        Workflow.Distill(Teacher.Value, "kd", Short, options, studentDim: 4, output: new RunOutput(viaWorkflow));
        var viaSession = Path.Combine(root, "kd-session");
        using (var session = TeacherSession.Open(Teacher.Value, studentDim: 4))
            session.Distill("kd", Short, options, new RunOutput(viaSession));
        foreach (var dir in new[] { viaWorkflow, viaSession })
        {
            var record = Json(dir, RunDirectory.MetricsFile)["distillation"]!;
            Assert.Equal("kd", (string?)record["method"]);
            Assert.Equal("kd", (string?)record["options"]!["method"]);
            Assert.Equal(0.5, (double)record["options"]!["kd"]!["lambda"]!);
            var header = HistoryHeader(dir);
            Assert.Contains("loss_kd", header);
            Assert.DoesNotContain(header, h => h.Contains("nkd") || h.Contains("cpd") || h.Contains("sld"));
            var diagnostics = record["last_epoch_diagnostics"]!.AsObject().Select(kv => kv.Key).ToList();
            Assert.DoesNotContain(diagnostics, k => k.Contains("nkd") || k.Contains("cpd") || k.Contains("sld"));
        }
    }

    [Fact]
    public void A_distill_run_records_the_distill_command_unless_the_caller_names_one()
    {
        var root = TestData.TempDir();
        var viaWorkflow = Path.Combine(root, "kd");
        Workflow.Distill(Teacher.Value, "kd", Short, studentDim: 4, output: new RunOutput(viaWorkflow));
        var viaSession = Path.Combine(root, "kd-session");
        var named = Path.Combine(root, "kd-named");
        using (var session = TeacherSession.Open(Teacher.Value, studentDim: 4))
        {
            session.Distill("kd", Short, output: new RunOutput(viaSession));
            session.Distill("kd", Short, output: new RunOutput(named) { Command = "compare" });
        }
        foreach (var dir in new[] { viaWorkflow, viaSession })
        {
            Assert.Equal("distill", (string?)Json(dir, RunDirectory.MetricsFile)["command"]);
            Assert.Equal("distill", (string?)Json(dir, RunDirectory.RunFile)["command"]);
        }
        Assert.Equal("compare", (string?)Json(named, RunDirectory.RunFile)["command"]);
        Assert.Equal("train", (string?)Json(Teacher.Value, RunDirectory.RunFile)["command"]);
    }

    [Fact]
    public void Invalid_inputs_are_refused_before_the_output_directory_is_made()
    {
        var root = TestData.TempDir();
        string Out(string name) => Path.Combine(root, name);
        var shape = new ModelShape(Backbone.Bpr, 8);
        Assert.Throws<UserErrorException>(() => Workflow.Distill(Teacher.Value, "foo", Short, output: new RunOutput(Out("foo"))));
        Assert.Throws<ArgumentException>(() =>
            Workflow.Distill(Teacher.Value, "mkd", Short, new DistillationOptions { UseNkd = false, UseCpd = false, UseSld = false },
                output: new RunOutput(Out("mkd-empty"))));
        Assert.Throws<ArgumentException>(() => Workflow.Distill(Teacher.Value, "kd", Short, studentDim: 0, output: new RunOutput(Out("dim0-student"))));
        Assert.Throws<ArgumentException>(() => Workflow.Distill(Teacher.Value, "kd", Short with { BatchSize = 0 }, output: new RunOutput(Out("batch0"))));
        Assert.Throws<ArgumentException>(() => Workflow.Train(Tiny, shape, Short with { MaxEpochs = 0 }, new RunOutput(Out("epochs0"))));
        Assert.Throws<ArgumentException>(() => Workflow.Train(Tiny, new ModelShape(Backbone.Bpr, 0), Short, new RunOutput(Out("dim0"))));
        Assert.Throws<ArgumentException>(() => Workflow.Train(Tiny, new ModelShape(Backbone.LightGcn, 8, -1), Short, new RunOutput(Out("layers"))));
        Assert.Throws<UserErrorException>(() => Workflow.Train(Tiny, shape, Short, new RunOutput(Out("gpu")), new ComputeOptions("gpu")));
        Assert.Empty(Directory.GetFileSystemEntries(root));
    }

    /// <summary>Records the steps a workflow reports.</summary>
    private sealed class Steps : IRunReporter
    {
        public List<string> Seen { get; } = new();
        public void Message(string text) => Seen.Add(text);
        public T Step<T>(string description, Func<T> work) { Seen.Add(description); return work(); }
        public TrainResult Train(string label, int maxEpochs, Func<Action<TrainingProgress>, TrainResult> fit) { Seen.Add(label); return fit(_ => { }); }
    }

    [Fact]
    public void A_session_refuses_a_student_dimension_below_1_when_it_opens_naming_the_argument()
    {
        // It opened (data and teacher loaded) and failed only at the first Distill, naming ModelShape.Dim.
        foreach (int dim in new[] { 0, -3 })
        {
            var steps = new Steps();
            var e = Assert.Throws<ArgumentException>(() => TeacherSession.Open(Teacher.Value, studentDim: dim, reporter: steps));
            Assert.Equal("studentDim", e.ParamName);
            Assert.StartsWith($"studentDim must be at least 1 (not {dim})", e.Message);
            Assert.Empty(steps.Seen);
        }
        var viaWorkflow = Assert.Throws<ArgumentException>(() => Workflow.Distill(Teacher.Value, "kd", Short, studentDim: 0));
        Assert.Equal("studentDim", viaWorkflow.ParamName);
    }

    [Fact]
    public void Export_evaluate_and_a_session_refuse_bad_arguments_before_the_run_loads()
    {
        // Each was found only after the data (and for export the model) had loaded, if at all by the check meant for it.
        var root = TestData.TempDir();
        var file = Path.Combine(root, "file");
        File.WriteAllText(file, "");
        var noPath = new DataOptions { Format = DataFormat.Csv };
        var calls = new (string What, Action<IRunReporter> Call)[]
        {
            ("export threads", r => ModelExport.Export(Teacher.Value, Path.Combine(root, "a.rdm"), RecDistill.Serving.VectorPrecision.Fp32, threads: 0, reporter: r)),
            ("export precision", r => ModelExport.Export(Teacher.Value, Path.Combine(root, "b.rdm"), (RecDistill.Serving.VectorPrecision)9, reporter: r)),
            ("npy into a file", r => ModelExport.ExportNpy(Teacher.Value, file, reporter: r)),
            ("evaluate threads", r => Workflow.Evaluate(Teacher.Value, new ComputeOptions(Threads: 0), reporter: r)),
            ("evaluate data", r => Workflow.Evaluate(Teacher.Value, data: noPath, reporter: r)),
            ("session data", r => TeacherSession.Open(Teacher.Value, data: noPath, reporter: r).Dispose()),
        };
        foreach (var (what, call) in calls)
        {
            var steps = new Steps();
            Assert.ThrowsAny<Exception>(() => call(steps));
            Assert.True(steps.Seen.Count == 0, $"{what}: {string.Join("; ", steps.Seen)}");
        }
        Assert.False(File.Exists(Path.Combine(root, "a.rdm")) || File.Exists(Path.Combine(root, "b.rdm")));
    }

    [Fact]
    public void A_disposed_session_refuses_to_distil_and_can_be_disposed_again()
    {
        // It answered "Tensor invalid -- empty handle" for a method, and trained a scratch student as if open.
        var session = TeacherSession.Open(Teacher.Value, studentDim: 4);
        session.Dispose();
        session.Dispose();
        var dir = Path.Combine(TestData.TempDir(), "after-dispose");
        Assert.Throws<ObjectDisposedException>(() => session.Distill("kd", Short, output: new RunOutput(dir)));
        Assert.Throws<ObjectDisposedException>(() => session.Distill("scratch", Short));
        Assert.False(Directory.Exists(dir));
    }

    [Fact]
    public void Resuming_a_finished_run_is_refused_unless_overwriting()
    {
        var root = TestData.TempDir();
        var shape = new ModelShape(Backbone.Bpr, 8);
        var dir = Path.Combine(root, "run");
        Workflow.Train(Tiny, shape, Short, new RunOutput(dir));
        var metrics = File.ReadAllText(Path.Combine(dir, RunDirectory.MetricsFile));
        var e = Assert.Throws<UserErrorException>(() =>
            Workflow.Train(Tiny, shape, Short with { LearningRate = 0.02 }, new RunOutput(dir) { Resume = true }));
        Assert.Contains("already finished", e.Message);
        Assert.Contains("nothing to resume", e.Message);
        Assert.Equal(metrics, File.ReadAllText(Path.Combine(dir, RunDirectory.MetricsFile)));

        // A run that never reached its first checkpoint (a new or empty directory) starts from its first epoch.
        var empty = Path.Combine(root, "empty");
        Directory.CreateDirectory(empty);
        var fromEmpty = Workflow.Train(Tiny, shape, Short, new RunOutput(empty) { Resume = true });
        var fromNew = Workflow.Train(Tiny, shape, Short, new RunOutput(Path.Combine(root, "new")) { Resume = true });
        Assert.All(new[] { fromEmpty, fromNew }, r => Assert.Equal(Enumerable.Range(1, Short.MaxEpochs), r.Train.History.Select(h => h.Epoch)));
        // Overwriting trains the run again.
        Workflow.Train(Tiny, shape, Short with { LearningRate = 0.02 }, new RunOutput(dir) { Resume = true, Overwrite = true });
        Assert.NotEqual(metrics, File.ReadAllText(Path.Combine(dir, RunDirectory.MetricsFile)));
    }

    [Fact]
    public void A_resume_with_other_method_settings_or_data_is_refused_naming_what_differs()
    {
        var root = TestData.TempDir();
        var kd = new DistillationOptions { Kd = new KdOptions { Lambda = 0.5 } };
        var student = Path.Combine(root, "kd");
        Assert.Throws<OperationCanceledException>(() => Workflow.Distill(Teacher.Value, "kd", Short, kd, studentDim: 4,
            output: new RunOutput(student), reporter: new Interrupting(Short.MaxEpochs)));
        Assert.True(File.Exists(RunDirectory.CheckpointPath(student)));
        var e = Assert.Throws<UserErrorException>(() => Workflow.Distill(Teacher.Value, "kd", Short,
            kd with { Kd = new KdOptions { Lambda = 5 } }, studentDim: 4, output: new RunOutput(student) { Resume = true }));
        Assert.Contains("other settings", e.Message);
        Assert.Contains("kd.lambda", e.Message);
        // With its own settings the run resumes.
        Workflow.Distill(Teacher.Value, "kd", Short, kd, studentDim: 4, output: new RunOutput(student) { Resume = true });
        Assert.True(RunDirectory.IsFinished(student));

        var run = Path.Combine(root, "bpr");
        var shape = new ModelShape(Backbone.Bpr, 8);
        Assert.Throws<OperationCanceledException>(() => Workflow.Train(Tiny, shape, Short, new RunOutput(run), reporter: new Interrupting(Short.MaxEpochs)));
        var e2 = Assert.Throws<UserErrorException>(() =>
            Workflow.Train(Tiny with { Seed = 77 }, shape, Short, new RunOutput(run) { Resume = true }));
        Assert.Contains("data.seed", e2.Message);
        var e3 = Assert.Throws<UserErrorException>(() =>
            Workflow.Train(Tiny, shape, Short with { LearningRate = 0.05 }, new RunOutput(run) { Resume = true }));
        Assert.Contains("train.learning_rate", e3.Message);
    }
}
