using TorchSharp;
using static TorchSharp.torch;

namespace RecDistill.Distillation;

/// <summary>Row-wise sampling of list positions from unnormalised log-weights.</summary>
public static class RankSampling
{
    /// <summary>
    /// count positions per row without replacement, P proportional to exp(logWeights), via the
    /// Gumbel-top-k trick (equivalent to sequential sampling without replacement). Result [rows, count].
    /// </summary>
    public static Tensor WithoutReplacement(Tensor logWeights, int count)
    {
        using var _ = torch.no_grad();
        var u = torch.rand_like(logWeights).clamp_(FixedScalars.Of(1e-12), FixedScalars.Of(1 - 1e-12));
        var keys = logWeights - (-u.log()).log();
        var (_, idx) = keys.topk(Math.Min(count, (int)logWeights.shape[1]), dim: 1);
        return idx;
    }

    /// <summary>Log-weights -rank / T for ranks 0..n-1, as one row [1, n].</summary>
    public static Tensor ExponentialRankLogWeights(int n, double temperature, Device device) =>
        (FixedScalars.Arange(n, ScalarType.Float32, device) * FixedScalars.Of(-1.0 / temperature)).unsqueeze(0);
}
