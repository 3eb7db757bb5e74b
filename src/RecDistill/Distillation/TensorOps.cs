using TorchSharp;
using static TorchSharp.torch;

namespace RecDistill.Distillation;

internal static class TensorOps
{
    /// <summary>Sorted distinct values of a tensor, flattened.</summary>
    public static Tensor Unique(Tensor t)
    {
        var (u, _, _) = torch.unique(t.flatten(), sorted: true);
        return u;
    }

    /// <summary>
    /// Rows grouped by label (0..groups-1): a permutation that lists each group's rows together, in
    /// label order, and each group's size; group g is order.narrow(0, sum of sizes before g, sizes[g]).
    /// </summary>
    public static (Tensor Order, long[] Sizes) GroupByLabel(Tensor labels, int groups)
    {
        var (_, order) = labels.sort();
        return (order, TensorCopy.ToArray<long>(torch.bincount(labels, minlength: groups)));
    }

    /// <summary>
    /// result[r, j] = whether values[r, j] occurs in sets[r, :], for ids in [0, universe): values [n, a],
    /// sets [n, b] (int64) -> bool [n, a]. The libtorch form (values[:, :, None] == sets[:, None, :]).any(2)
    /// builds an [n, a, b] tensor; here each row marks its set in a stamp table, O(a + b) per row.
    /// </summary>
    public static unsafe Tensor InRows(Tensor values, Tensor sets, int universe)
    {
        if (values.dim() != 2 || sets.dim() != 2 || values.shape[0] != sets.shape[0])
            throw new ArgumentException($"InRows: values [{string.Join(", ", values.shape)}] and sets [{string.Join(", ", sets.shape)}] need the same rows");
        var v = TensorCopy.ToArray<long>(values.to(ScalarType.Int64));
        var st = TensorCopy.ToArray<long>(sets.to(ScalarType.Int64));
        int n = (int)values.shape[0], a = (int)values.shape[1], b = (int)sets.shape[1];
        foreach (var id in v) if (id < 0 || id >= universe) throw new ArgumentOutOfRangeException(nameof(values), $"id {id} outside [0, {universe})");
        foreach (var id in st) if (id < 0 || id >= universe) throw new ArgumentOutOfRangeException(nameof(sets), $"id {id} outside [0, {universe})");
        var result = new bool[(long)n * a];
        RowChunks.Run(n, 512, (from, to) =>
        {
            // Stamp r + 1 marks row r's set: no clearing between rows.
            var stamp = new int[universe];
            for (int r = from; r < to; r++)
            {
                for (int k = 0; k < b; k++) stamp[st[(long)r * b + k]] = r + 1;
                for (int j = 0; j < a; j++) result[(long)r * a + j] = stamp[v[(long)r * a + j]] == r + 1;
            }
        });
        return torch.tensor(result, new long[] { n, a }, device: values.device);
    }

    /// <summary>Row-wise dot products: a [n, d], b [n, d] -> [n].</summary>
    public static Tensor RowDot(Tensor a, Tensor b) => (a * b).sum(-1);
}
