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

    /// <summary>Row-wise dot products: a [n, d], b [n, d] -> [n].</summary>
    public static Tensor RowDot(Tensor a, Tensor b) => (a * b).sum(-1);
}
