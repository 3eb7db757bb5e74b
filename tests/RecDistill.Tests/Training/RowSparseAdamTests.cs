using RecDistill.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace RecDistill.Tests.Training;

public class RowSparseAdamTests
{
    // d = 4 runs only the scalar tail of the in-place CPU update; 19 runs its SIMD body and a
    // tail; 600 rows with two threads split the rows into parallel chunks.
    [Theory]
    [InlineData(6, 4, 1)]
    [InlineData(6, 19, 1)]
    [InlineData(600, 19, 2)]
    public void Matches_dense_Adam_with_L2_when_every_row_is_touched(int rows, int dim, int threads)
    {
        int before = get_num_threads();
        set_num_threads(threads);
        try { CompareWithDenseAdam(rows, dim); }
        finally { set_num_threads(before); }
    }

    private static void CompareWithDenseAdam(int rows, int dim)
    {
        manual_seed(3);
        var init = randn(rows, dim);
        var sparseTable = init.clone();
        var dense = new TorchSharp.Modules.Parameter(init.clone());
        var sparse = new RowSparseAdam(sparseTable, lr: 0.01, weightDecay: 0.1);
        var reference = optim.Adam(new[] { dense }, lr: 0.01, weight_decay: 0.1);
        var all = arange(rows, dtype: ScalarType.Int64);
        for (int step = 0; step < 5; step++)
        {
            var g = randn(rows, dim);
            sparse.Step(all, g);
            reference.zero_grad();
            (dense * g).sum().backward();
            reference.step();
        }
        Assert.True(allclose(sparseTable, dense.detach(), rtol: 1e-5, atol: 1e-6));
    }

    [Fact]
    public void Untouched_rows_stay_bit_identical()
    {
        var table = randn(5, 3);
        var before = table.clone();
        var opt = new RowSparseAdam(table, lr: 0.1, weightDecay: 0.01);
        opt.Step(tensor(new long[] { 1, 3 }), ones(2, 3));
        Assert.True(table[0].eq(before[0]).all().item<bool>());
        Assert.True(table[2].eq(before[2]).all().item<bool>());
        Assert.True(table[4].eq(before[4]).all().item<bool>());
        Assert.False(table[1].eq(before[1]).all().item<bool>());
        // Adam's first step moves each touched coordinate by about lr against the gradient.
        Assert.True(allclose(table[3], before[3] - 0.1, atol: 1e-3));
    }
}
