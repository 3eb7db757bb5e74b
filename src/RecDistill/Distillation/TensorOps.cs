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

    /// <summary>Row-wise dot products: a [n, d], b [n, d] -> [n].</summary>
    public static Tensor RowDot(Tensor a, Tensor b) => (a * b).sum(-1);
}
