using System.Text.Json.Nodes;
using RecDistill.Data;
using RecDistill.Models;
using RecDistill.Runs;
using RecDistill.Training;

namespace RecDistill.Tests.Runs;

/// <summary>A workflow's cancellation token: the run stops, keeps a whole checkpoint, and a resume ends as an uninterrupted run.</summary>
public class CancellationTests
{
    private static readonly DataOptions Tiny = TestData.TinySynthetic(6);
    // Small batches for several per epoch; no early stop, so every run trains all its epochs.
    private static readonly TrainOptions Training = new()
    {
        MaxEpochs = 10, EvalEvery = 2, Patience = 50, LearningRate = 0.01, BatchSize = 64, Seed = 6,
    };

    /// <summary>Cancels the token from the progress callback of the training whose label starts with <paramref name="label"/>, at the moment <paramref name="when"/> says.</summary>
    private sealed class Cancelling(CancellationTokenSource source, string label, Func<TrainingProgress, bool> when) : IRunReporter
    {
        public List<string> Messages { get; } = new();
        public void Message(string text) => Messages.Add(text);
        public T Step<T>(string description, Func<T> work) => work();
        public TrainResult Train(string runLabel, int maxEpochs, Func<Action<TrainingProgress>, TrainResult> fit) =>
            fit(p => { if (runLabel.StartsWith(label, StringComparison.Ordinal) && when(p)) source.Cancel(); });
    }

    private static JsonNode Metrics(string dir) => JsonNode.Parse(File.ReadAllText(Path.Combine(dir, RunDirectory.MetricsFile)))!;

    private static int CheckpointEpoch(string dir) => TrainingCheckpoint.Load(Path.Combine(dir, TrainingCheckpoint.FileName)).Header.Epoch;

    private static void AssertSameMetrics(string expected, string actual)
    {
        var (a, b) = (Metrics(expected), Metrics(actual));
        Assert.Equal((int)a["best_epoch"]!, (int)b["best_epoch"]!);
        Assert.Equal(a["valid"]!.ToJsonString(), b["valid"]!.ToJsonString());
        Assert.Equal(a["test"]!.ToJsonString(), b["test"]!.ToJsonString());
    }

    private static void AssertStopped(OperationCanceledException e, CancellationTokenSource source, string dir, int checkpointEpoch)
    {
        Assert.Equal(source.Token, e.CancellationToken);
        Assert.False(File.Exists(Path.Combine(dir, RunDirectory.MetricsFile)));
        Assert.Equal(checkpointEpoch, CheckpointEpoch(dir));
    }

    // Validations at even epochs. A stop at epoch 6's validation keeps epoch 6 (its state is written before the
    // call ends); a stop during epoch 7's batches keeps epoch 6; one at epoch 7's last batch lets epoch 7 end and keeps it.
    [Theory]
    [InlineData(6, true, 6)]
    [InlineData(7, false, 6)]
    [InlineData(7, null, 7)]
    public void A_cancelled_train_keeps_a_checkpoint_and_resumes_to_the_numbers_of_an_uninterrupted_run(int epoch, bool? atValidation, int kept)
    {
        var root = TestData.TempDir();
        var shape = new ModelShape(Backbone.Bpr, 8);
        var whole = Path.Combine(root, "whole");
        Workflow.Train(Tiny, shape, Training, new RunOutput(whole));

        var cut = Path.Combine(root, "cut");
        using var source = new CancellationTokenSource();
        var reporter = new Cancelling(source, "bpr", p => p.Epoch == epoch && atValidation switch
        {
            true => p.AfterValidation,
            false => p.Batch == 2 && !p.AfterValidation,
            null => p.Batch == p.Batches && !p.AfterValidation,
        });
        var e = Assert.ThrowsAny<OperationCanceledException>(() =>
            Workflow.Train(Tiny, shape, Training, new RunOutput(cut), reporter: reporter, cancellationToken: source.Token));
        AssertStopped(e, source, cut, kept);

        var resumed = Workflow.Train(Tiny, shape, Training, new RunOutput(cut) { Resume = true });
        Assert.Equal(Enumerable.Range(1, Training.MaxEpochs), resumed.Train.History.Select(h => h.Epoch));
        AssertSameMetrics(whole, cut);
        Assert.False(File.Exists(Path.Combine(cut, TrainingCheckpoint.FileName)));
    }

    /// <summary>A d=16 BPR teacher trained for <paramref name="epochs"/> epochs in ROOT/teacher.</summary>
    private static string TrainTeacher(string root, int epochs)
    {
        var teacher = Path.Combine(root, "teacher");
        Workflow.Train(Tiny, new ModelShape(Backbone.Bpr, 16), Training with { MaxEpochs = epochs }, new RunOutput(teacher));
        return teacher;
    }

    /// <summary>Distils a d=4 student into <paramref name="dir"/>, stops it where <paramref name="when"/> says, and checks that it kept epoch <paramref name="kept"/>.</summary>
    private static void StopDistill(string teacher, string method, string dir, Func<TrainingProgress, bool> when, int kept)
    {
        using var source = new CancellationTokenSource();
        var reporter = new Cancelling(source, method, when);
        var e = Assert.ThrowsAny<OperationCanceledException>(() =>
            Workflow.Distill(teacher, method, Training, studentDim: 4, output: new RunOutput(dir), reporter: reporter, cancellationToken: source.Token));
        AssertStopped(e, source, dir, kept);
    }

    [Fact]
    public void A_cancelled_distillation_keeps_a_checkpoint_and_resumes_to_the_numbers_of_an_uninterrupted_run()
    {
        var root = TestData.TempDir();
        var teacher = TrainTeacher(root, 4);
        var whole = Path.Combine(root, "whole");
        Workflow.Distill(teacher, "sld", Training, studentDim: 4, output: new RunOutput(whole));

        var cut = Path.Combine(root, "cut");
        StopDistill(teacher, "sld", cut, p => p.Epoch == 5 && p.Batch == 1, kept: 4);

        Workflow.Distill(teacher, "sld", Training, studentDim: 4, output: new RunOutput(cut) { Resume = true });
        AssertSameMetrics(whole, cut);
    }

    [Fact]
    public void A_student_is_not_resumed_against_a_teacher_retrained_in_its_directory()
    {
        var root = TestData.TempDir();
        var teacher = TrainTeacher(root, 2);
        var cut = Path.Combine(root, "cut");
        StopDistill(teacher, "kd", cut, p => p.Epoch == 3, kept: 2);
        // Same data, same path, another model: the rest of the student's epochs would learn from it.
        Workflow.Train(Tiny, new ModelShape(Backbone.Bpr, 16), Training with { MaxEpochs = 2, LearningRate = 0.02 }, new RunOutput(teacher) { Overwrite = true });
        var e = Assert.Throws<UserErrorException>(() =>
            Workflow.Distill(teacher, "kd", Training, studentDim: 4, output: new RunOutput(cut) { Resume = true }));
        Assert.Contains("teacher_model_sha256", e.Message);
    }

    [Fact]
    public void A_cancelled_comparison_keeps_its_finished_runs_and_the_next_call_completes_the_plan_without_them()
    {
        var root = TestData.TempDir();
        var plan = new ComparisonPlan
        {
            OutDir = Path.Combine(root, "cmp"), Data = Tiny, Teacher = new ModelShape(Backbone.Bpr, 16), StudentDim = 4,
            Train = Training with { MaxEpochs = 4 }, Methods = new[] { "scratch", "kd" }, Seeds = 1,
        };
        using var source = new CancellationTokenSource();
        // Stopped during the second student's training, after its first validation.
        var reporter = new Cancelling(source, "kd", p => p.AfterValidation);
        var e = Assert.ThrowsAny<OperationCanceledException>(() => Comparison.Run(plan, reporter, cancellationToken: source.Token));
        Assert.Equal(source.Token, e.CancellationToken);
        var scratch = Comparison.RunDir(plan, "scratch", 1);
        var kd = Comparison.RunDir(plan, "kd", 1);
        Assert.True(RunDirectory.IsFinished(scratch));
        Assert.True(File.Exists(Path.Combine(plan.Records, "scratch-seed1.json")));
        Assert.False(RunDirectory.IsFinished(kd));
        Assert.False(File.Exists(Path.Combine(kd, "error.txt"))); // a stop is no failure
        Assert.Equal(2, CheckpointEpoch(kd));
        var stamp = File.GetLastWriteTimeUtc(Path.Combine(scratch, RunDirectory.MetricsFile));

        var messages = new Cancelling(new CancellationTokenSource(), "", _ => false);
        var outcome = Comparison.Run(plan, messages);
        Assert.Empty(outcome.Failures);
        Assert.True(RunDirectory.IsFinished(kd));
        Assert.Contains(messages.Messages, m => m.Contains("kd seed 1 (resuming)"));
        Assert.Equal(stamp, File.GetLastWriteTimeUtc(Path.Combine(scratch, RunDirectory.MetricsFile)));
        Assert.Equal(3, Directory.GetFiles(plan.Records).Length); // teacher, scratch, kd

        // The kd run resumed from its checkpoint ends as the same plan run whole.
        var wholePlan = plan with { OutDir = Path.Combine(root, "whole") };
        Comparison.Run(wholePlan);
        AssertSameMetrics(Comparison.RunDir(wholePlan, "kd", 1), kd);
    }

    [Fact]
    public void An_overwriting_run_stopped_early_leaves_none_of_the_old_run_s_files()
    {
        var dir = Path.Combine(TestData.TempDir(), "run");
        Workflow.Train(Tiny, new ModelShape(Backbone.Bpr, 8), Training with { MaxEpochs = 2 }, new RunOutput(dir));
        using var source = new CancellationTokenSource();
        var reporter = new Cancelling(source, "bpr", p => p.Epoch == 3);
        Assert.Throws<OperationCanceledException>(() => Workflow.Train(Tiny, new ModelShape(Backbone.Bpr, 16), Training,
            new RunOutput(dir) { Overwrite = true }, reporter: reporter, cancellationToken: source.Token));
        // The d=8 run's metrics.json, run.json and history.csv would describe the d=16 run's model.bin.
        foreach (var file in new[] { RunDirectory.MetricsFile, RunDirectory.RunFile, RunDirectory.HistoryFile, RunDirectory.TestUsersFile })
            Assert.False(File.Exists(Path.Combine(dir, file)), file);
        Assert.Equal(2, CheckpointEpoch(dir));
    }

    /// <summary>Cancels the token at the end of the step whose description starts with <paramref name="prefix"/>.</summary>
    private sealed class CancellingStep(CancellationTokenSource source, string prefix) : IRunReporter
    {
        public void Message(string text) { }
        public T Step<T>(string description, Func<T> work)
        {
            var result = work();
            if (description.StartsWith(prefix, StringComparison.Ordinal)) source.Cancel();
            return result;
        }
        public TrainResult Train(string label, int maxEpochs, Func<Action<TrainingProgress>, TrainResult> fit) => fit(_ => { });
    }

    [Fact]
    public void A_run_stopped_before_training_begins_leaves_the_run_it_would_overwrite_as_it_was()
    {
        // The directory was prepared (the old run's files deleted) before the token was checked: a stop asked for
        // while the data loaded or the method made its lists left neither the old run nor a new one.
        var root = TestData.TempDir();
        var teacher = Path.Combine(root, "teacher");
        var student = Path.Combine(root, "student");
        Workflow.Train(Tiny, new ModelShape(Backbone.Bpr, 8), Training with { MaxEpochs = 2 }, new RunOutput(teacher));
        Workflow.Distill(teacher, "kd", Training with { MaxEpochs = 2 }, studentDim: 2, output: new RunOutput(student));
        string[] Files(string dir) => Directory.GetFiles(dir).Select(f => Path.GetFileName(f) + " " + File.ReadAllText(f).Length).Order().ToArray();
        var (teacherFiles, studentFiles) = (Files(teacher), Files(student));
        using (var source = new CancellationTokenSource())
            Assert.Throws<OperationCanceledException>(() => Workflow.Train(Tiny, new ModelShape(Backbone.Bpr, 16), Training,
                new RunOutput(teacher) { Overwrite = true }, reporter: new CancellingStep(source, "Loading"), cancellationToken: source.Token));
        Assert.Equal(teacherFiles, Files(teacher));
        using (var source = new CancellationTokenSource())
            Assert.Throws<OperationCanceledException>(() => Workflow.Distill(teacher, "kd", Training, studentDim: 4,
                output: new RunOutput(student) { Overwrite = true }, reporter: new CancellingStep(source, "Preparing kd"), cancellationToken: source.Token));
        Assert.Equal(studentFiles, Files(student));
        var fresh = Path.Combine(root, "fresh");
        bool prepared = false;
        using (var source = new CancellationTokenSource())
        using (var session = TeacherSession.Open(teacher, studentDim: 2, reporter: new CancellingStep(source, "Preparing kd")))
            Assert.Throws<OperationCanceledException>(() => session.Distill("kd", Training,
                output: new RunOutput(fresh) { OnPrepared = _ => prepared = true }, cancellationToken: source.Token));
        Assert.False(Directory.Exists(fresh));
        Assert.False(prepared);
    }
}
