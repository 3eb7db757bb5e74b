using System.Diagnostics;
using RecDistill.Cli;
using RecDistill.Data;
using RecDistill.Distillation;
using RecDistill.Evaluation;
using RecDistill.Models;
using RecDistill.Training;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace RecDistill.Tests.Reliability;

/// <summary>
/// A TorchSharp Scalar that nothing holds can be finalized while libtorch still reads it; in normal
/// runs that happened once in hours (an MKD run at epoch 6, a LightGCN HTD run after 135 epochs).
/// Here two threads collect and run the finalizers without pause while the real work runs, so
/// such a Scalar is freed within seconds: the teacher's training (validation, early stopping, the
/// best model and the resume state written), full-ranking evaluation, and every distillation method
/// on its backbone, built as the distill and compare commands build them. A freed Scalar can also
/// kill the test host; with RECDISTILL_STRESS_TRACE=1 each stage is written to stderr, which the
/// test run shows when the host crashes.
/// </summary>
public sealed class FinalizerStressTests(ITestOutputHelper output)
{
    private const int Seed = 2023;

    [Theory]
    [InlineData(Backbone.Bpr)]
    [InlineData(Backbone.LightGcn)]
    public void Teacher_evaluation_and_every_method_survive_finalizers_running_all_the_time(Backbone backbone)
    {
        // The CLI's thread and allocator settings: lanes for the loss terms, threads inside libtorch.
        var device = RunWorkflow.SetupTorch("cpu", null);
        var data = DatasetLoader.Load(new DataOptions
        {
            Format = DataFormat.Synthetic,
            Synthetic = new SyntheticOptions { Users = 300, Items = 600, AvgInteractionsPerUser = 20, Seed = 3 },
        });
        var dir = TestData.TempDir();
        int layers = backbone == Backbone.LightGcn ? 2 : 0;
        // Small batches: many native calls, each a chance for a finalizer to free a Scalar in use.
        var train = new TrainOptions { MaxEpochs = 4, EvalEvery = 1, Patience = 2, LearningRate = 0.01, BatchSize = 64, Seed = Seed };
        var distill = train with { MaxEpochs = 3 };

        var clock = Stopwatch.StartNew();
        string stage = "start";
        int epoch = 0, batch = 0, batches = 0;
        Action<TrainingProgress> track = p => { epoch = p.Epoch; batch = p.Batch; batches = p.Batches; };
        bool trace = Environment.GetEnvironmentVariable("RECDISTILL_STRESS_TRACE") == "1";
        void Stage(string name)
        {
            stage = name;
            epoch = batch = batches = 0;
            if (trace) Console.Error.WriteLine($"finalizer stress {backbone}: {name} at {clock.Elapsed.TotalSeconds:F1} s");
        }
        using var pressure = new FinalizerPressure();
        // Tensors that nothing holds are exposed the same way (Trainer's detach().clone() of the best
        // weights, the outputs of LightGCN's autograd Function outside a batch's scope); this test is
        // about Scalars, which no scope holds, so the scope holds this thread's tensors.
        using var tensors = NewDisposeScope();
        try
        {
            Stage("teacher training");
            string teacherPath = Path.Combine(dir, "teacher", ModelFile.FileName);
            Directory.CreateDirectory(Path.GetDirectoryName(teacherPath)!);
            using (var model = RunWorkflow.CreateModel(backbone, 32, layers, data, device, Seed))
            {
                var result = new Trainer(train)
                {
                    CheckpointPath = teacherPath,
                    StatePath = Path.Combine(dir, "teacher", TrainingCheckpoint.FileName),
                    Progress = track,
                }.Fit(model, data);
                Assert.All(result.History, h => Assert.True(double.IsFinite(h.Loss)));
                Stage("teacher evaluation");
                Evaluate(model, data);
            }
            Log(clock, $"{backbone} teacher", pressure);

            using var teacher = FrozenTeacher.Load(teacherPath, data, device);
            using var ctx = new DistillationContext(teacher, data, 8, device);
            foreach (var method in DistillationMethods.Names)
            {
                Stage($"{method} preparation");
                var runDir = Path.Combine(dir, method);
                Directory.CreateDirectory(runDir);
                manual_seed(Seed); // projector initialisation, as the distill command does
                using var kd = DistillationMethods.Create(DistillationOptions.Defaults(method, backbone), ctx);
                using var student = RunWorkflow.CreateModel(backbone, 8, layers, data, device, Seed);
                Stage($"{method} training");
                var result = new Trainer(distill)
                {
                    CheckpointPath = Path.Combine(runDir, ModelFile.FileName),
                    StatePath = Path.Combine(runDir, TrainingCheckpoint.FileName),
                    Progress = track,
                }.Fit(student, data, kd);
                Assert.Equal(distill.MaxEpochs, result.EpochsRun);
                Assert.All(result.History, h => Assert.True(double.IsFinite(h.Loss)));
                int perEpoch = batches;
                Stage($"{method} evaluation");
                Evaluate(student, data);
                Log(clock, $"{backbone} {method} ({result.EpochsRun} epochs of {perEpoch} batches in {result.TrainSeconds:F1} s)", pressure);
            }
        }
        catch (Exception e)
        {
            pressure.Dispose();
            throw new InvalidOperationException(
                $"{backbone} {stage} failed ({(batches == 0 ? "before any batch" : $"last batch done: epoch {epoch}, batch {batch}/{batches}")}) after {clock.Elapsed.TotalSeconds:F1} s " +
                $"and {pressure.Collections} forced collections: {e.GetType().Name}: {e.Message}", e);
        }
        finally
        {
            try { Directory.Delete(dir, recursive: true); } catch (IOException) { }
        }
        pressure.Dispose();
        pressure.ThrowIfFailed();
        Assert.True(pressure.Collections > 0);
    }

    private static void Evaluate(IRecommender model, SplitDataset data)
    {
        var evaluator = new FullRankingEvaluator(data);
        foreach (var split in new[] { EvalSplit.Valid, EvalSplit.Test })
            Assert.All(evaluator.Evaluate(model, split).Metrics.Values, v => Assert.InRange(v, 0, 1));
    }

    private void Log(Stopwatch clock, string what, FinalizerPressure pressure) =>
        output.WriteLine($"{clock.Elapsed.TotalSeconds,6:F1} s  {what} done ({pressure.Collections} collections)");

    /// <summary>
    /// Two threads that collect and wait for the finalizers in a loop until disposed. Mostly
    /// generation-0 collections, a full one every 64th: a Scalar just made is young, and they are
    /// cheap, so the finalizers run far more often than with full collections. On 00cbe1c (before
    /// the fix) this failed every run; one thread of full collections failed about one in three.
    /// </summary>
    private sealed class FinalizerPressure : IDisposable
    {
        private readonly Thread[] _threads;
        private volatile bool _stop;
        private long _collections;
        private Exception? _failure;

        public FinalizerPressure()
        {
            _threads = new[] { new Thread(Loop), new Thread(Loop) };
            foreach (var t in _threads)
            {
                t.IsBackground = true;
                t.Name = "finalizer pressure";
                t.Start();
            }
        }

        public long Collections => Interlocked.Read(ref _collections);

        private void Loop()
        {
            try
            {
                while (!_stop)
                {
                    long n = Interlocked.Increment(ref _collections);
                    GC.Collect(n % 64 == 0 ? GC.MaxGeneration : 0, GCCollectionMode.Forced, blocking: true);
                    GC.WaitForPendingFinalizers();
                }
            }
            catch (Exception e)
            {
                _failure = e;
            }
        }

        public void ThrowIfFailed()
        {
            if (_failure is not null) throw new InvalidOperationException("the finalizer pressure thread failed", _failure);
        }

        public void Dispose()
        {
            _stop = true;
            foreach (var t in _threads) t.Join();
        }
    }
}
