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
        using (LentThreads.Use(pool))
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
        using var lent = LentThreads.Use(new StrongBox<int>(1));
        var seen = new ConcurrentBag<int>();
        RowChunks.Run(1000, 64, (from, to) => { for (int r = from; r < to; r++) seen.Add(r); });
        Assert.Equal(Enumerable.Range(0, 1000), seen.OrderBy(r => r));
    }
}
