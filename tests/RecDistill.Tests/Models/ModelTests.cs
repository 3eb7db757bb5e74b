using RecDistill.Data;
using RecDistill.Models;
using RecDistill.Training;
using static TorchSharp.torch;

namespace RecDistill.Tests.Models;

public class ModelTests
{
    [Fact]
    public void Normalized_adjacency_has_symmetric_degree_weights()
    {
        // Users: 0 -> {0, 1}, 1 -> {1}. Item 1 has degree 2.
        var a = LightGcn.NormalizedAdjacency(2, 2, new[] { new[] { 0, 1 }, new[] { 1 } }).to_dense();
        Assert.Equal((float)(1 / Math.Sqrt(2 * 1)), a[0, 2].item<float>(), 6);
        Assert.Equal((float)(1 / Math.Sqrt(2 * 2)), a[0, 3].item<float>(), 6);
        Assert.Equal((float)(1 / Math.Sqrt(1 * 2)), a[1, 3].item<float>(), 6);
        Assert.True(a.eq(a.t()).all().item<bool>());
        Assert.Equal(0f, a[0, 1].item<float>());
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void Csr_adjacency_product_and_its_gradient_equal_the_sparse_tensor_product(int threads)
    {
        var data = TestData.Clustered();
        var adjacency = new GraphPropagation(GraphAdjacency.Build(data.NumUsers, data.NumItems, data.Train));
        using var sparse = adjacency.Adjacency.ToSparseTensor();
        using var threadScope = TestData.Threads(threads);
        var x = randn(adjacency.Size, 7, generator: new TorchSharp.torch.Generator(3)).requires_grad_(true);
        var weights = randn(adjacency.Size, 7, generator: new TorchSharp.torch.Generator(4));
        var ours = adjacency.Multiply(adjacency.Multiply(x));
        var reference = mm(sparse, mm(sparse, x));
        Assert.True(allclose(ours, reference, rtol: 1e-5, atol: 1e-6));
        var g1 = autograd.grad(new[] { (ours * weights).sum() }, new[] { x })[0];
        var g2 = autograd.grad(new[] { (reference * weights).sum() }, new[] { x })[0];
        Assert.True(allclose(g1, g2, rtol: 1e-5, atol: 1e-6));
        Assert.True(g1.abs().sum().item<float>() > 0);
    }

    [Theory]
    [InlineData(0, 1, 7)]
    [InlineData(1, 1, 70)]
    [InlineData(2, 2, 21)]
    [InlineData(3, 1, 200)]
    [InlineData(3, 2, 35)]
    [InlineData(4, 2, 64)]
    [InlineData(3, 2, 10)]
    [InlineData(2, 1, 1)]
    public void Fused_propagation_and_its_gradient_equal_the_layer_by_layer_sparse_products(int layers, int threads, int dim)
    {
        var data = TestData.Clustered();
        var adjacency = new GraphPropagation(GraphAdjacency.Build(data.NumUsers, data.NumItems, data.Train));
        using var sparse = adjacency.Adjacency.ToSparseTensor();
        using var threadScope = TestData.Threads(threads);
        var users = randn(data.NumUsers, dim, generator: new TorchSharp.torch.Generator(3)).requires_grad_(true);
        var items = randn(data.NumItems, dim, generator: new TorchSharp.torch.Generator(5)).requires_grad_(true);
        var weights = randn(adjacency.Size, dim, generator: new TorchSharp.torch.Generator(4));
        var (ou, oi) = adjacency.Propagate(users, items, layers);
        var ours = cat(new[] { ou, oi }, 0);
        var e = cat(new[] { users, items }, 0);
        var sum = e;
        for (int l = 0; l < layers; l++) { e = mm(sparse, e); sum = sum.Plus(e); }
        var reference = sum / FixedScalars.Of(layers + 1);
        Assert.True(allclose(ours, reference, rtol: 1e-5, atol: 1e-6));
        var g1 = autograd.grad(new[] { (ours * weights).sum() }, new[] { users, items });
        var g2 = autograd.grad(new[] { (reference * weights).sum() }, new[] { users, items });
        Assert.True(allclose(g1[0], g2[0], rtol: 1e-5, atol: 1e-6));
        Assert.True(allclose(g1[1], g2[1], rtol: 1e-5, atol: 1e-6));
        Assert.True(g1[1].abs().sum().item<float>() > 0);
        using (no_grad())
        {
            var (nu, ni) = adjacency.Propagate(users, items, layers);
            Assert.Equal(ours.detach().data<float>().ToArray(), cat(new[] { nu, ni }, 0).data<float>().ToArray());
        }
        // A loss that reads only the items' vectors still sends gradients to the users' rows.
        var onlyItems = autograd.grad(new[] { adjacency.Propagate(users, items, layers).Items.sum() }, new[] { users });
        Assert.Equal(layers > 0, onlyItems[0].abs().sum().item<float>() > 0);
    }

    [Theory]
    [InlineData(1, 1, 10)]
    [InlineData(3, 2, 10)]
    [InlineData(3, 1, 21)]
    [InlineData(2, 2, 100)]
    [InlineData(3, 1, 64)]
    [InlineData(2, 1, 3)]
    public void Fused_propagation_sums_each_column_in_csr_order_bit_for_bit(int layers, int threads, int dim)
    {
        // The kernel's claim: whatever the vector width it uses for a column, the column's sum is the
        // chain of fused multiply-adds over the row's neighbours in CSR order, then (previous + sum) * scale.
        var data = TestData.Clustered();
        var adjacency = new GraphPropagation(GraphAdjacency.Build(data.NumUsers, data.NumItems, data.Train));
        using var sparse = adjacency.Adjacency.ToSparseTensor();
        var index = sparse.SparseIndices.data<long>().ToArray();
        var values = sparse.SparseValues.data<float>().ToArray();
        int n = adjacency.Size, nnz = values.Length;
        using var threadScope = TestData.Threads(threads);
        var users = randn(data.NumUsers, dim, generator: new TorchSharp.torch.Generator(8));
        var items = randn(data.NumItems, dim, generator: new TorchSharp.torch.Generator(9));
        var (ou, oi) = adjacency.Propagate(users, items, layers);
        var ours = cat(new[] { ou, oi }, 0).data<float>().ToArray();

        var x = cat(new[] { users, items }, 0).data<float>().ToArray();
        var sum = (float[])x.Clone();
        float scale = 1f / (layers + 1);
        for (int l = 1; l <= layers; l++)
        {
            var next = new float[n * dim];
            for (int q = 0; q < nnz; q++)
            {
                long r = index[q], c = index[nnz + q];
                for (int j = 0; j < dim; j++) next[r * dim + j] = MathF.FusedMultiplyAdd(x[c * dim + j], values[q], next[r * dim + j]);
            }
            for (int i = 0; i < n * dim; i++) sum[i] = (sum[i] + next[i]) * (l == layers ? scale : 1f);
            x = next;
        }
        Assert.Equal(sum, ours);
    }

    [Fact]
    public void LightGcn_with_zero_layers_is_the_raw_table_and_layers_average()
    {
        var train = new[] { new[] { 0 }, new[] { 1 } };
        using var g0 = new LightGcn(2, 2, 3, 0, train);
        var (u0, i0) = g0.FinalEmbeddings();
        Assert.True(u0.eq(g0.UserWeight.detach()).all().item<bool>());
        using var g1 = new LightGcn(2, 2, 3, 1, train);
        var (u1, _) = g1.FinalEmbeddings();
        // One layer: user 0's only neighbour is item 0 with weight 1, so final = (e_u0 + e_i0) / 2.
        var want = g1.UserWeight.detach()[0].Plus(g1.ItemWeight.detach()[0]) / FixedScalars.Of(2);
        Assert.True(allclose(u1[0], want, atol: 1e-6));
    }

    [Fact]
    public void Parameter_count_is_both_tables()
    {
        using var m = new BprMf(10, 30, 4);
        Assert.Equal(160, m.ParameterCount);
    }

    [Fact]
    public void Model_file_round_trips_and_rejects_damage()
    {
        var data = TestData.Clustered();
        var dir = TestData.TempDir();
        var path = Path.Combine(dir, "m.bin");
        using var m = new LightGcn(data.NumUsers, data.NumItems, 5, 2, data.Train);
        ModelFile.Save(path, m);
        using var back = ModelFile.Load(path, data, CPU);
        Assert.IsType<LightGcn>(back);
        Assert.Equal(2, ((LightGcn)back).Layers);
        Assert.True(back.ItemWeight.eq(m.ItemWeight).all().item<bool>());
        Assert.Empty(Directory.GetFiles(dir, "*.tmp"));

        var bytes = File.ReadAllBytes(path);
        bytes[bytes.Length / 2] ^= 0x40;
        File.WriteAllBytes(path, bytes);
        var e = Assert.Throws<DataFormatException>(() => ModelFile.Read(path));
        Assert.Contains("checksum", e.Message);

        File.WriteAllBytes(path, bytes[..100]);
        Assert.Throws<DataFormatException>(() => ModelFile.Read(path));

        ModelFile.Save(path, m);
        bytes = File.ReadAllBytes(path);
        bytes[8] = 99; // format version
        File.WriteAllBytes(path, bytes);
        Assert.Contains("version 99", Assert.Throws<DataFormatException>(() => ModelFile.Read(path)).Message);
    }

    [Fact]
    public void Loading_onto_other_data_is_refused()
    {
        var data = TestData.Clustered();
        var path = Path.Combine(TestData.TempDir(), "m.bin");
        using var m = new BprMf(data.NumUsers, data.NumItems, 3);
        ModelFile.Save(path, m);
        var other = TestData.Clustered(users: 20);
        Assert.Contains("users", Assert.Throws<DataFormatException>(() => ModelFile.Load(path, other, CPU)).Message);
    }
}
