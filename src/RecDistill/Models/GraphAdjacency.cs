using System.Numerics;
using System.Runtime.CompilerServices;
using TorchSharp;
using static TorchSharp.torch;

namespace RecDistill.Models;

/// <summary>
/// A_hat = D^-1/2 A D^-1/2 of the user-item graph of the train pairs (users first, then items),
/// stored as CSR and multiplied with dense [n, d] tensors by a C# kernel.
/// libtorch's COO product sorts the uncoalesced indices again on every call (TorchSharp offers
/// no coalesce), which made the three products of a LightGCN step cost more than everything
/// else in it. A_hat is symmetric, so the backward product is the same kernel.
/// Each output row is summed by one thread in CSR order: the same numbers for any thread count.
/// </summary>
public sealed class GraphAdjacency
{
    private readonly int[] _rowStart; // [n + 1]
    private readonly int[] _columns;  // [nnz]
    private readonly float[] _values; // [nnz]

    private GraphAdjacency(int[] rowStart, int[] columns, float[] values)
    {
        _rowStart = rowStart; _columns = columns; _values = values;
    }

    public int Size => _rowStart.Length - 1;
    public long NonZeros => _columns.Length;

    public static GraphAdjacency Build(int numUsers, int numItems, int[][] trainItemsPerUser)
    {
        int n = numUsers + numItems;
        var itemDegree = new int[numItems];
        foreach (var items in trainItemsPerUser) foreach (var i in items) itemDegree[i]++;
        var rowStart = new int[n + 1];
        for (int u = 0; u < numUsers; u++) rowStart[u + 1] = trainItemsPerUser[u].Length;
        for (int i = 0; i < numItems; i++) rowStart[numUsers + i + 1] = itemDegree[i];
        for (int r = 0; r < n; r++) rowStart[r + 1] += rowStart[r];
        var columns = new int[rowStart[n]];
        var values = new float[rowStart[n]];
        var fill = (int[])rowStart.Clone();
        for (int u = 0; u < numUsers; u++)
        {
            var items = trainItemsPerUser[u];
            foreach (var i in items)
            {
                float w = (float)(1.0 / Math.Sqrt((double)items.Length * itemDegree[i]));
                int a = fill[u]++;
                columns[a] = numUsers + i; values[a] = w;
                int b = fill[numUsers + i]++;
                columns[b] = u; values[b] = w;
            }
        }
        return new GraphAdjacency(rowStart, columns, values);
    }

    /// <summary>A_hat x with autograd (gradient A_hat g). x: float32 [n, d] on the CPU.</summary>
    public Tensor Multiply(Tensor x) =>
        x.requires_grad ? AdjacencyProduct.apply(x, this) : MultiplyNoGrad(x);

    /// <summary>The product without recording it for autograd.</summary>
    public Tensor MultiplyNoGrad(Tensor x)
    {
        if (x.device_type != DeviceType.CPU) throw new ArgumentException("the CSR product runs on the CPU");
        if (x.dim() != 2 || x.shape[0] != Size) throw new ArgumentException($"expected [{Size}, d], got [{string.Join(", ", x.shape)}]");
        using var _ = torch.no_grad();
        var input = x.dtype == ScalarType.Float32 ? x.contiguous() : x.to_type(ScalarType.Float32).contiguous();
        int d = (int)input.shape[1];
        var output = torch.empty(Size, d, dtype: ScalarType.Float32);
        if (d == 0 || Size == 0) return output;
        unsafe
        {
            fixed (byte* src = input.bytes, dst = output.bytes)
            {
                nint xp = (nint)src, yp = (nint)dst;
                RowChunks.Run(Size, 512, (from, to) => Rows((float*)xp, (float*)yp, d, from, to));
            }
        }
        if (!ReferenceEquals(input, x)) input.Dispose();
        return output;
    }

    private unsafe void Rows(float* x, float* y, int d, int from, int to)
    {
        int width = Vector<float>.Count;
        for (int r = from; r < to; r++)
        {
            float* dst = y + (long)r * d;
            new Span<float>(dst, d).Clear();
            for (int k = _rowStart[r]; k < _rowStart[r + 1]; k++)
            {
                float w = _values[k];
                float* src = x + (long)_columns[k] * d;
                int j = 0;
                for (; j <= d - width; j += width)
                {
                    var acc = Unsafe.ReadUnaligned<Vector<float>>(dst + j) + Unsafe.ReadUnaligned<Vector<float>>(src + j) * w;
                    Unsafe.WriteUnaligned(dst + j, acc);
                }
                for (; j < d; j++) dst[j] += src[j] * w;
            }
        }
    }

    /// <summary>The same matrix as a libtorch sparse COO tensor (for other devices and for tests).</summary>
    public Tensor ToSparseTensor()
    {
        int n = Size;
        var rows = new long[NonZeros];
        for (int r = 0; r < n; r++)
            for (int k = _rowStart[r]; k < _rowStart[r + 1]; k++) rows[k] = r;
        var cols = Array.ConvertAll(_columns, c => (long)c);
        var indices = torch.stack(new[] { torch.tensor(rows), torch.tensor(cols) });
        return torch.sparse_coo_tensor(indices, torch.tensor(_values), new long[] { n, n });
    }

    private sealed class AdjacencyProduct : torch.autograd.SingleTensorFunction<AdjacencyProduct>
    {
        public override string Name => nameof(AdjacencyProduct);

        public static Tensor apply(Tensor x, GraphAdjacency adjacency) =>
            torch.autograd.SingleTensorFunction<AdjacencyProduct>.apply(x, adjacency);

        public override Tensor forward(torch.autograd.AutogradContext ctx, params object[] vars)
        {
            var adjacency = (GraphAdjacency)vars[1];
            ctx.save_data("adjacency", adjacency);
            return adjacency.MultiplyNoGrad((Tensor)vars[0]);
        }

        // A_hat is symmetric: d(A_hat x)/dx applied to g is A_hat g.
        public override List<Tensor> backward(torch.autograd.AutogradContext ctx, Tensor grad) =>
            new() { ((GraphAdjacency)ctx.get_data("adjacency")).MultiplyNoGrad(grad), null! };
    }
}
