using TorchSharp;
using static TorchSharp.torch;

namespace RecDistill.Models;

/// <summary>
/// A_hat = D^-1/2 A D^-1/2 of the user-item graph of the train pairs (users first, then items),
/// stored as CSR. Its plain product is libtorch's sparse one (<see cref="ToSparseTensor"/>); the C#
/// kernels over the CSR arrays are in <c>Kernels/GraphPropagation.cs</c>.
/// </summary>
public sealed class GraphAdjacency
{
    private readonly int[] _rowStart; // [n + 1]
    private readonly int[] _columns;  // [nnz]
    private readonly float[] _values; // [nnz]

    internal int[] RowStart => _rowStart;
    internal int[] Columns => _columns;
    internal float[] Values => _values;

    private GraphAdjacency(int[] rowStart, int[] columns, float[] values)
    {
        _rowStart = rowStart; _columns = columns; _values = values;
    }

    /// <summary>Rows (and columns) of the matrix: users + items.</summary>
    public int Size => _rowStart.Length - 1;
    /// <summary>Stored entries: two per train pair (one each way).</summary>
    public long NonZeros => _columns.Length;

    /// <summary>The normalized adjacency of the graph whose edges are each user's train items.</summary>
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
}
