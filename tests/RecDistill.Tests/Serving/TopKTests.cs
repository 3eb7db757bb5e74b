using RecDistill.Serving;

namespace RecDistill.Tests.Serving;

public class TopKTests
{
    private static long[] Select(int k, float[] row, bool wholeRow)
    {
        var top = new TopK(k);
        if (wholeRow) top.OfferRow(row);
        else top.Offer(row, 0);
        var result = new long[top.Count];
        top.DrainSorted(result);
        return result;
    }

    private static long[] BruteForce(int k, float[] row) =>
        Enumerable.Range(0, row.Length).Where(i => row[i] > float.NegativeInfinity)
            .OrderByDescending(i => row[i]).ThenBy(i => i).Take(k).Select(i => (long)i).ToArray();

    [Theory]
    [InlineData(1, 32)]
    [InlineData(2, 100)]
    [InlineData(3, 300)]
    [InlineData(4, 5)]
    public void A_whole_row_gives_what_the_streamed_row_gives(int seed, int k)
    {
        var rng = new Random(seed);
        for (int rep = 0; rep < 20; rep++)
        {
            // Coarse values (many ties), some excluded (-inf) and some NaN entries.
            var row = new float[rng.Next(2048, 6000)];
            for (int i = 0; i < row.Length; i++)
                row[i] = rng.Next(20) switch { 0 => float.NegativeInfinity, 1 => float.NaN, _ => rng.Next(-50, 50) / 4f };
            var want = BruteForce(k, row);
            Assert.Equal(want, Select(k, row, wholeRow: false));
            Assert.Equal(want, Select(k, row, wholeRow: true));
        }
    }

    [Fact]
    public void A_sample_that_overestimates_the_threshold_falls_back_to_a_full_scan()
    {
        // The sample reads every 8th score of 4096; those are the row's largest, so the estimate lets in
        // fewer than k scores and the row must be scanned again.
        var rng = new Random(5);
        var row = new float[4096];
        for (int i = 0; i < row.Length; i++) row[i] = i % 8 == 0 ? 1000 + i : (float)rng.NextDouble();
        Assert.Equal(BruteForce(64, row), Select(64, row, wholeRow: true));
    }
}
