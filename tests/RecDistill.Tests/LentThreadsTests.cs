using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using RecDistill;

namespace RecDistill.Tests;

public class LentThreadsTests
{
    [Fact]
    public void Lent_threads_count_on_the_borrowing_thread_only_and_until_disposed()
    {
        var pool = new StrongBox<int>(0);
        Assert.Equal(0, LentThreads.Available);
        using (LentThreads.Use(pool, 1))
        {
            Assert.Equal(0, LentThreads.Available);
            Interlocked.Add(ref pool.Value, 1);
            Assert.Equal(1, LentThreads.Available);
            int elsewhere = -1;
            var other = new Thread(() => elsewhere = LentThreads.Available);
            other.Start();
            other.Join();
            Assert.Equal(0, elsewhere);
        }
        Assert.Equal(0, LentThreads.Available);
    }

    [Fact]
    public void Row_chunks_cover_every_row_once_with_lent_threads()
    {
        using var _ = TestData.Threads(1);
        using var lent = LentThreads.Use(new StrongBox<int>(1), 1);
        var seen = new ConcurrentBag<int>();
        RowChunks.Run(1000, 64, (from, to) => { for (int r = from; r < to; r++) seen.Add(r); });
        Assert.Equal(Enumerable.Range(0, 1000), seen.OrderBy(r => r));
    }

    [Fact]
    public void A_thread_lent_while_chunks_run_takes_the_rest_and_every_row_runs_once()
    {
        var pool = new StrongBox<int>(0);
        using var lent = LentThreads.Use(pool, 1);
        var runs = new int[1000];
        var threads = new ConcurrentDictionary<int, bool>();
        int caller = Environment.CurrentManagedThreadId;
        using var helperRan = new ManualResetEventSlim();
        bool waited = false;
        RowChunks.Run(1000, 10, (from, to) =>
        {
            bool mine = Environment.CurrentManagedThreadId == caller;
            threads[Environment.CurrentManagedThreadId] = true;
            for (int r = from; r < to; r++) Interlocked.Increment(ref runs[r]);
            if (!mine) helperRan.Set();
            if (from == 0) Interlocked.Exchange(ref pool.Value, 1);   // lent after the first chunk
            // The caller's next chunk waits (once, up to 10 s) for the helper to take one, so that a
            // thread pool slow to start the helper cannot let the caller run every chunk first.
            else if (mine && !waited) { waited = true; helperRan.Wait(TimeSpan.FromSeconds(10)); }
        });
        Assert.All(runs, n => Assert.Equal(1, n));
        Assert.True(threads.Count >= 2, "the lent thread took no chunk");
    }

    [Fact]
    public void A_run_inside_another_runs_chunk_stays_on_that_chunks_thread()
    {
        using var _ = TestData.Threads(2);
        var inner = new ConcurrentBag<(int Thread, int Row)>();
        int outerThread = -1;
        RowChunks.Run(2, 1, (from, to) =>
        {
            if (from == 1) return;   // the other chunk ends at once, leaving its thread free
            outerThread = Environment.CurrentManagedThreadId;
            // Chunks of one row with a pause each: a nested parallel loop would hand some to the free thread.
            RowChunks.Run(40, 1, (a, b) =>
            {
                Thread.Sleep(2);
                for (int r = a; r < b; r++) inner.Add((Environment.CurrentManagedThreadId, r));
            });
        });
        Assert.Equal(Enumerable.Range(0, 40), inner.Select(x => x.Row).OrderBy(r => r));
        Assert.All(inner, x => Assert.Equal(outerThread, x.Thread));
        // Outside any chunk, a run uses the threads again.
        var threads = new ConcurrentDictionary<int, bool>();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        RowChunks.Run(40, 1, (a, b) =>
        {
            threads[Environment.CurrentManagedThreadId] = true;
            WaitForASecondThread(threads, clock);
        });
        Assert.True(threads.Count >= 2, "the top-level run took one thread");
    }

    /// <summary>
    /// Holds a chunk until a second thread has taken one, at most 10 s from the clock's start: the
    /// parallel loop's second worker comes from the thread pool, which other tests running at the same
    /// time can keep busy long enough for one thread to run every chunk of a short loop first.
    /// </summary>
    private static void WaitForASecondThread(ConcurrentDictionary<int, bool> threads, System.Diagnostics.Stopwatch clock)
    {
        while (threads.Count < 2 && clock.Elapsed < TimeSpan.FromSeconds(10)) Thread.Sleep(1);
    }

    [Fact]
    public void Pieces_run_costliest_first_and_each_once()
    {
        // Costs 2, 5, 0, 3, 5: the two of 5 by index, then 3, 2, 0.
        Assert.Equal(new[] { 1, 4, 3, 0, 2 }, RowChunks.LargestFirst(new long[] { 2, 5, 0, 3, 5 }));
        using var _ = TestData.Threads(1);
        var ran = new List<int>();
        RowChunks.RunPieces(new long[] { 2, 5, 0, 3, 5 }, ran.Add);
        Assert.Equal(new[] { 1, 4, 3, 0, 2 }, ran);
    }

    [Fact]
    public void A_piece_costing_more_than_the_rest_per_thread_runs_alone_with_the_threads_for_its_loops()
    {
        using var _ = TestData.Threads(2);
        var innerThreads = new ConcurrentDictionary<int, ConcurrentDictionary<int, bool>>();
        var runs = new int[4];
        var clock = System.Diagnostics.Stopwatch.StartNew();
        // Piece 2 costs 10 against 3 for the others together: it runs first and alone.
        RowChunks.RunPieces(new long[] { 1, 1, 10, 1 }, piece =>
        {
            Interlocked.Increment(ref runs[piece]);
            var seen = innerThreads.GetOrAdd(piece, _ => new ConcurrentDictionary<int, bool>());
            RowChunks.Run(40, 1, (a, b) =>
            {
                seen[Environment.CurrentManagedThreadId] = true;
                // The other pieces' loops must stay on their thread: the pause gives a nested loop the chance not to.
                if (piece == 2) WaitForASecondThread(seen, clock);
                else Thread.Sleep(2);
            });
        });
        Assert.All(runs, n => Assert.Equal(1, n));
        Assert.True(innerThreads[2].Count >= 2, "the costly piece's loop ran on one thread");
        foreach (int piece in new[] { 0, 1, 3 }) Assert.Single(innerThreads[piece]);
    }
}
