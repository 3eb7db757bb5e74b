using RecDistill.Models;
using RecDistill.Runs;
using RecDistill.Training;

namespace RecDistill.Tests.Runs;

/// <summary>Alone: a test beside it that seeds torch or sets its threads would change the numbers compared.</summary>
[CollectionDefinition(nameof(WorkflowLockTests), DisableParallelization = true)]
public sealed class WorkflowLockCollection;

[Collection(nameof(WorkflowLockTests))]
public class WorkflowLockTests
{
    /// <summary>
    /// Holds each training after its data is loaded until the other one's is too (or a second has
    /// passed), so that concurrent trainings seed torch and draw their initial weights at the same moment.
    /// </summary>
    private sealed class Meeting(CountdownEvent both) : IRunReporter
    {
        public void Message(string text) { }
        public T Step<T>(string description, Func<T> work)
        {
            var result = work();
            both.Signal();
            both.Wait(TimeSpan.FromSeconds(1));
            return result;
        }
        public TrainResult Train(string label, int maxEpochs, Func<Action<TrainingProgress>, TrainResult> fit) => fit(_ => { });
    }

    [Fact]
    public void Concurrent_trainings_give_the_numbers_of_the_same_trainings_run_one_after_the_other()
    {
        var data = TestData.TinySynthetic(9);
        var shape = new ModelShape(Backbone.Bpr, 2048);
        var first = TestData.ShortTraining(9);
        var second = first with { Seed = 10 };
        var compute = new ComputeOptions(Threads: 1);
        double[] Numbers(RunResult r) =>
            [.. r.Train.History.Select(h => h.Loss), .. r.Valid.Metrics.Values, .. r.Test.Metrics.Values];
        double[] Train(TrainOptions train, IRunReporter? reporter = null) => Numbers(Workflow.Train(data, shape, train, null, compute, reporter));

        var alone = (First: Train(first), Second: Train(second));
        for (int round = 0; round < 3; round++)
        {
            double[]? a = null, b = null;
            using var meeting = new CountdownEvent(2);
            Parallel.Invoke(() => a = Train(first, new Meeting(meeting)), () => b = Train(second, new Meeting(meeting)));
            Assert.Equal(alone.First, a);
            Assert.Equal(alone.Second, b);
        }
    }
}
