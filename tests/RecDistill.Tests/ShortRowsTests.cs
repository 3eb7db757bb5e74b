using System.Numerics.Tensors;

namespace RecDistill.Tests;

public class ShortRowsTests
{
    [Fact]
    public unsafe void Dot_and_multiply_add_match_the_plain_loops_at_every_width()
    {
        var rng = new Random(9);
        for (int d = 0; d <= 70; d++)
        {
            var a = Enumerable.Range(0, d).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
            var b = Enumerable.Range(0, d).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
            float scale = (float)(rng.NextDouble() * 4 - 2);
            double want = 0;
            for (int k = 0; k < d; k++) want += (double)a[k] * b[k];
            var y = (float[])b.Clone();
            var expected = (float[])b.Clone();
            TensorPrimitives.MultiplyAdd(a, scale, expected, expected);
            fixed (float* pa = a, pb = b, py = y)
            {
                Assert.True(Math.Abs(ShortRows.Dot(pa, pb, d) - want) <= 1e-5 * (1 + d), $"dot at width {d}");
                ShortRows.MultiplyAdd(pa, scale, py, d);
            }
            // Bit for bit: the gradients of the list losses must not change with this kernel.
            Assert.Equal(expected, y);
        }
    }
}
