using RecDistill.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace RecDistill.Distillation;

/// <summary>RRD settings (SPEC 6).</summary>
public sealed record RrdOptions
{
    /// <summary>Interesting items K sampled per user from the teacher's top-mxK (100).</summary>
    public int K { get; init; } = 100;
    /// <summary>Uninteresting items L drawn uniformly per user (200).</summary>
    public int L { get; init; } = 200;
    /// <summary>Length mxK of the teacher's top list the interesting items come from (500).</summary>
    public int MxK { get; init; } = 500;
    /// <summary>Temperature T of the sampling weights exp(-rank / T) (10).</summary>
    public double T { get; init; } = 10;
    /// <summary>Weight lambda of the RRD loss (0.1).</summary>
    public double Lambda { get; init; } = 0.1;
}

/// <summary>
/// RRD (Kang et al. 2020): per epoch, K "interesting" items sampled from the teacher's top-mxK by
/// exp(-rank / T), kept in teacher order, and L "uninteresting" items drawn uniformly from the items
/// outside that list. A relaxed Plackett-Luce loss asks the student to rank the interesting items in
/// teacher order above all the uninteresting ones (whose order is free):
/// sum_k [ log(sum_{j >= k} exp(s_j) + sum_l exp(s_l)) - s_k ].
/// </summary>
public sealed class RelaxedRankingDistillation(DistillationContext ctx, RrdOptions options) : ItemListDistillation(ctx)
{
    private Tensor? _uninterestingValid;
    private int _k;

    /// <inheritdoc/>
    public override string Name => "rrd";

    /// <summary>Per user, the K interesting items in teacher order, then the L uniform draws (those in the teacher's list are masked out of the loss).</summary>
    protected override Tensor BuildLists(int epoch, IRecommender student, Random rng)
    {
        var top = Context.TeacherTopK(options.MxK);                                  // [U, mxK]
        long users = top.shape[0], items = Context.Data.NumItems;
        var logw = RankSampling.ExponentialRankLogWeights((int)top.shape[1], options.T, top.device).expand(users, -1);
        var positions = RankSampling.WithoutReplacement(logw, options.K).sort(1).Values; // teacher order
        var interesting = top.gather(1, positions);
        _k = (int)interesting.shape[1];
        // Uniform draws; the rare ones that land in the teacher's list are masked out of the loss.
        var uninteresting = torch.randint(0, items, new[] { users, (long)options.L }, dtype: ScalarType.Int64, device: top.device);
        var sorted = top.sort(1).Values;
        using Scalar last = sorted.shape[1] - 1; // an integer Scalar keeps the indices int64; `using` keeps it alive
        var at = torch.searchsorted(sorted, uninteresting).clamp_max(last);
        _uninterestingValid = Keep(sorted.gather(1, at).ne(uninteresting));
        return torch.cat(new[] { interesting, uninteresting }, 1);
    }

    /// <summary>The relaxed Plackett-Luce loss over the lists of the batch's users, summed, times lambda.</summary>
    protected override Tensor ListLoss(Tensor users, Tensor studentScores)
    {
        var s = studentScores.narrow(1, 0, _k);                                       // [n, K], teacher order
        var u = studentScores.narrow(1, _k, studentScores.shape[1] - _k)
            .masked_fill(_uninterestingValid!.index_select(0, users).logical_not(), FixedScalars.NegativeInfinity);
        var restOfList = s.flip(1).logcumsumexp(1).flip(1);                          // log sum_{j >= k} exp(s_j)
        var below = u.logsumexp(1, keepdim: true);
        var denominator = torch.logaddexp(restOfList, below);
        return (denominator - s).sum() * FixedScalars.Of(options.Lambda);
    }
}
