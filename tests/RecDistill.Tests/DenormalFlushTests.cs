using System.Collections.Concurrent;
using RecDistill.Models;
using RecDistill.Training;

namespace RecDistill.Tests;

public class DenormalFlushTests
{
    /// <summary>Runs the action on a thread of its own, so the flag state of the test runner's threads does not matter.</summary>
    private static T OnNewThread<T>(Func<T> action)
    {
        T result = default!;
        Exception? failure = null;
        var thread = new Thread(() => { try { result = action(); } catch (Exception e) { failure = e; } });
        thread.Start();
        thread.Join();
        if (failure is not null) throw failure;
        return result;
    }

    [LinuxX64Fact]
    public void Sets_the_flags_on_the_calling_thread_and_threads_it_starts_inherit_them()
    {
        var (after, child) = OnNewThread(() =>
        {
            DenormalFlush.OnThisThread();
            bool a = DenormalFlush.ActiveOnThisThread();
            // libtorch's OpenMP workers are started by a thread that has the flags, and rely on this.
            bool c = OnNewThread(DenormalFlush.ActiveOnThisThread);
            return (a, c);
        });
        Assert.True(after);
        Assert.True(child, "a thread started by a flagged thread should inherit the flags");
    }

    [LinuxX64Fact]
    public void Row_chunks_compute_with_the_flags_on_every_thread()
    {
        var flags = OnNewThread(() =>
        {
            using var _ = TestData.Threads(2);
            var seen = new ConcurrentBag<bool>();
            RowChunks.Run(64, 1, (from, to) => { seen.Add(DenormalFlush.ActiveOnThisThread()); Thread.Sleep(1); });
            return seen.ToArray();
        });
        Assert.Equal(64, flags.Length);
        Assert.All(flags, Assert.True);
    }

    [LinuxX64Fact]
    public void Pieces_compute_with_the_flags_also_when_one_runs_alone()
    {
        var flags = OnNewThread(() =>
        {
            using var _ = TestData.Threads(2);
            var seen = new ConcurrentDictionary<int, bool>();
            // Piece 0 costs more than the others together per thread: it runs alone, on this thread.
            RowChunks.RunPieces(new long[] { 10, 1, 1, 1 }, piece => seen[piece] = DenormalFlush.ActiveOnThisThread());
            return seen.OrderBy(kv => kv.Key).Select(kv => kv.Value).ToArray();
        });
        Assert.Equal(4, flags.Length);
        Assert.All(flags, Assert.True);
    }

    [LinuxX64Fact]
    public void The_trainer_sets_the_flags_on_its_thread()
    {
        var data = TestData.Clustered();
        bool active = OnNewThread(() =>
        {
            using var model = new BprMf(data.NumUsers, data.NumItems, 4);
            new Trainer(new TrainOptions { MaxEpochs = 1, EvalEvery = 1, Seed = 1 }).Fit(model, data);
            return DenormalFlush.ActiveOnThisThread();
        });
        Assert.True(active);
    }
}
