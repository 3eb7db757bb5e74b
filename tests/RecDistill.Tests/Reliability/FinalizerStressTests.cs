using System.Diagnostics;
using RecDistill.Data;
using RecDistill.Distillation;
using RecDistill.Evaluation;
using RecDistill.Models;
using RecDistill.Runs;
using RecDistill.Training;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace RecDistill.Tests.Reliability;

/// <summary>
/// A TorchSharp Scalar that nothing holds can be finalized while libtorch still reads it; in normal
/// runs that happened once in hours (an MKD run at epoch 6, a LightGCN HTD run after 135 epochs).
/// Here two threads collect and run the finalizers without pause while the real work runs, so
/// such a Scalar (or a tensor that nothing holds) is freed within seconds: the teacher's training
/// (validation, early stopping, the best model and the resume state written), full-ranking
/// evaluation, and every distillation method on its backbone, through the workflows the CLI calls. A freed Scalar can also
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
        // The CLI's code paths: Workflow.Train for the teacher, one TeacherSession for the eleven students,
        // each run trained, evaluated on validation and test, and written (model.bin, checkpoints, metrics).
        var data = new DataOptions
        {
            Format = DataFormat.Synthetic,
            Synthetic = new SyntheticOptions { Users = 300, Items = 600, AvgInteractionsPerUser = 20, Seed = 3 },
        };
        var dir = TestData.TempDir();
        int layers = backbone == Backbone.LightGcn ? 2 : 0;
        // Small batches: many native calls, each a chance for a finalizer to free a Scalar or tensor in use.
        var train = new TrainOptions { MaxEpochs = 4, EvalEvery = 1, Patience = 2, LearningRate = 0.01, BatchSize = 64, Seed = Seed };
        var distill = train with { MaxEpochs = 3 };

        var clock = Stopwatch.StartNew();
        var reporter = new StageReporter(backbone, clock, Environment.GetEnvironmentVariable("RECDISTILL_STRESS_TRACE") == "1");
        using var pressure = new FinalizerPressure();
        try
        {
            reporter.Stage = "teacher";
            var teacherDir = Path.Combine(dir, "teacher");
            var teacher = Workflow.Train(data, new ModelShape(backbone, 32, layers), train, new RunOutput(teacherDir), ComputeOptions.Cpu, reporter);
            Assert.All(teacher.Train.History, h => Assert.True(double.IsFinite(h.Loss)));
            Assert.True(teacher.Test.Users > 0);
            Log(clock, $"{backbone} teacher", pressure);

            using var session = TeacherSession.Open(teacherDir, ComputeOptions.Cpu, null, 8, reporter);
            foreach (var method in DistillationMethods.Names)
            {
                reporter.Stage = method;
                var run = session.Distill(method, distill, output: new RunOutput(Path.Combine(dir, method)));
                Assert.Equal(distill.MaxEpochs, run.Train.EpochsRun);
                Assert.All(run.Train.History, h => Assert.True(double.IsFinite(h.Loss)));
                Assert.All(run.Test.Metrics.Values, v => Assert.InRange(v, 0, 1));
                Log(clock, $"{backbone} {method} ({run.Train.EpochsRun} epochs of {reporter.Batches} batches in {run.Train.TrainSeconds:F1} s)", pressure);
            }
        }
        catch (Exception e)
        {
            pressure.Dispose();
            throw new InvalidOperationException($"{backbone} {reporter.Where()} failed after {clock.Elapsed.TotalSeconds:F1} s " +
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

    /// <summary>Where the work is (stage, epoch, batch), for the failure message; with tracing, each step on stderr.</summary>
    private sealed class StageReporter(Backbone backbone, Stopwatch clock, bool trace) : IRunReporter
    {
        private string _step = "";
        private int _epoch, _batch;
        public string Stage { get; set; } = "start";
        public int Batches { get; private set; }

        public string Where() => $"{Stage} {_step}" + (Batches == 0 ? " (before any batch)" : $" (last batch done: epoch {_epoch}, batch {_batch}/{Batches})");

        private void Enter(string step)
        {
            _step = step;
            if (trace) Console.Error.WriteLine($"finalizer stress {backbone}: {Stage} {step} at {clock.Elapsed.TotalSeconds:F1} s");
        }

        public void Message(string text) { }

        public T Step<T>(string description, Func<T> work)
        {
            Enter(description);
            return work();
        }

        public TrainResult Train(string label, int maxEpochs, Func<Action<TrainingProgress>, TrainResult> fit)
        {
            Enter("training");
            _epoch = _batch = Batches = 0;
            var result = fit(p => { _epoch = p.Epoch; _batch = p.Batch; Batches = p.Batches; });
            Enter("evaluation and writing");
            return result;
        }
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
