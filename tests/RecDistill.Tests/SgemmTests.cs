using RecDistill.Distillation;
using TorchSharp;
using static TorchSharp.torch;

namespace RecDistill.Tests;

public class SgemmTests
{
    /// <summary>A float32 [rows, cols] matrix of one value, to see which entries a product wrote.</summary>
    private static Tensor Filled(long rows, long cols, float value) =>
        torch.full(rows, cols, FixedScalars.Of(value), dtype: ScalarType.Float32);

    /// <summary>Shapes with remainders of the 8-row blocks, the 32-column panels and the 256-deep k blocks.</summary>
    [Avx512Theory]
    [InlineData(1, 1, 1)]
    [InlineData(8, 32, 256)]
    [InlineData(13, 45, 70)]
    [InlineData(67, 600, 33)]
    [InlineData(300, 20, 210)]
    public unsafe void Matches_libtorch_for_plain_and_transposed_operands(int m, int k, int n)
    {
        torch.manual_seed(m + k + n);
        var a = torch.randn(m, k); var b = torch.randn(k, n); var bias = torch.randn(n);
        var at = a.t().contiguous(); var bt = b.t().contiguous();
        var want = torch.addmm(bias, a, b, 1, 1);
        foreach (var (aT, bT) in new[] { (false, false), (true, false), (false, true), (true, true) })
        {
            var c = torch.empty(m, n);
            fixed (byte* ap = (aT ? at : a).bytes, bp = (bT ? bt : b).bytes, cp = c.bytes, biasp = bias.bytes)
                Sgemm.Multiply((float*)ap, aT ? 1 : k, aT ? m : 1, (float*)bp, bT ? 1 : n, bT ? k : 1, (float*)cp, m, k, n, (float*)biasp);
            Assert.True(c.allclose(want, rtol: 1e-4, atol: 1e-4), $"{m}x{k}x{n} transposed A {aT} B {bT}: max diff {(c - want).abs().max().item<float>()}");
        }
        // Without a bias (the backward products): whole tiles store their sums as they are.
        var plain = Filled(m, n, 5);
        fixed (byte* ap = a.bytes, bp = b.bytes, cp = plain.bytes)
            Sgemm.Multiply((float*)ap, k, 1, (float*)bp, n, 1, (float*)cp, m, k, n);
        Assert.True(plain.allclose(a.mm(b), rtol: 1e-4, atol: 1e-4), $"{m}x{k}x{n} without a bias");
        // Rows scattered in place: product row i lands in C's row perm[i], in a C wider than the product.
        var perm = torch.randperm(m, dtype: ScalarType.Int64);
        var permArray = perm.data<long>().ToArray();
        var wide = Filled(m, n + 3, 7);
        fixed (byte* ap = a.bytes, bp = b.bytes, cp = wide.bytes, biasp = bias.bytes)
        fixed (long* ip = permArray)
            Sgemm.Multiply((float*)ap, k, 1, (float*)bp, n, 1, (float*)cp, m, k, n, (float*)biasp, cRow: n + 3, cRowIndex: ip);
        var placed = torch.zeros(m, n).index_copy_(0, perm, want);
        Assert.True(wide.narrow(1, 0, n).allclose(placed, rtol: 1e-4, atol: 1e-4), $"{m}x{k}x{n} with a row index");
        Assert.True(wide.narrow(1, n, 3).eq(FixedScalars.Of(7)).all().item<bool>(), "columns past n untouched");
    }

    /// <summary>
    /// A last panel narrower than 32 columns (written through a mask) gives each column the bits it gets
    /// inside a product whose panels are all whole: the columns are summed independently, in the same order.
    /// </summary>
    [Avx512Theory]
    [InlineData(67, 600, 10)]
    [InlineData(67, 600, 45)]
    [InlineData(16, 20, 110)]
    [InlineData(9, 300, 50)]
    [InlineData(24, 7, 120)]
    public unsafe void A_partial_last_panel_gives_the_bits_of_the_same_columns_in_whole_panels(int m, int k, int n)
    {
        torch.manual_seed(m * k + n);
        int wideN = (n + 31) / 32 * 32;
        var a = torch.randn(m, k); var bWide = torch.randn(k, wideN); var biasWide = torch.randn(wideN);
        var b = bWide.narrow(1, 0, n).contiguous(); var bias = biasWide.narrow(0, 0, n).contiguous();
        foreach (bool withBias in new[] { true, false })
        {
            var whole = torch.empty(m, wideN);
            var part = Filled(m, n + 5, 3); // C wider than the product: the columns past n stay as they are
            fixed (byte* ap = a.bytes, bwp = bWide.bytes, bp = b.bytes, bwb = biasWide.bytes, bb = bias.bytes, wp = whole.bytes, pp = part.bytes)
            {
                Sgemm.Multiply((float*)ap, k, 1, (float*)bwp, wideN, 1, (float*)wp, m, k, wideN, withBias ? (float*)bwb : null);
                Sgemm.Multiply((float*)ap, k, 1, (float*)bp, n, 1, (float*)pp, m, k, n, withBias ? (float*)bb : null, cRow: n + 5);
            }
            Assert.Equal(whole.narrow(1, 0, n).contiguous().data<float>().ToArray(), part.narrow(1, 0, n).contiguous().data<float>().ToArray());
            Assert.True(part.narrow(1, n, 5).eq(FixedScalars.Of(3)).all().item<bool>(), "columns past n untouched");
        }
    }

    [Avx512Fact]
    public unsafe void A_prefix_of_a_packed_matrix_gives_the_bits_of_its_columns_packed_alone()
    {
        torch.manual_seed(12);
        const int m = 11, k = 70, n = 75;   // two whole panels and a partial third
        var a = torch.randn(m, k); var b = torch.randn(k, n);
        Sgemm.PackedMatrix whole;
        fixed (byte* bp = b.bytes) whole = new Sgemm.PackedMatrix((float*)bp, n, 1, k, n);  // packing copies B
        using var _ = whole;
        foreach (int columns in new[] { 0, Sgemm.PanelWidth, 2 * Sgemm.PanelWidth, n })
        {
            var viaPrefix = Filled(m, n, 3);
            var alone = Filled(m, n, 3);
            fixed (byte* ap = a.bytes, bp = b.bytes, pp = viaPrefix.bytes, qp = alone.bytes)
            {
                Sgemm.Multiply((float*)ap, k, 1, whole.Prefix(columns), (float*)pp, m, cRow: n);
                Sgemm.Multiply((float*)ap, k, 1, (float*)bp, n, 1, (float*)qp, m, k, columns, cRow: n);
            }
            Assert.True(viaPrefix.eq(alone).all().item<bool>(), $"{columns} columns");
            if (columns > 0) Assert.True(viaPrefix.narrow(1, 0, columns).allclose(a.mm(b.narrow(1, 0, columns)), rtol: 1e-4, atol: 1e-4));
        }
        Assert.Throws<ArgumentOutOfRangeException>(() => whole.Prefix(40));     // not a whole panel
        Assert.Throws<ArgumentOutOfRangeException>(() => whole.Prefix(n + 1));
        whole.Prefix(Sgemm.PanelWidth).Dispose();                                  // a view frees nothing
        var again = torch.empty(m, n);
        fixed (byte* ap = a.bytes, cp = again.bytes)
            Sgemm.Multiply((float*)ap, k, 1, whole, (float*)cp, m);
        Assert.True(again.allclose(a.mm(b), rtol: 1e-4, atol: 1e-4));
    }
}
