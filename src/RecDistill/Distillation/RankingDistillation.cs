using RecDistill.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace RecDistill.Distillation;

/// <summary>RD settings (Tang and Wang 2018): top-K of the teacher as extra positives, weight exp(-rank / T).</summary>
public sealed record RdOptions
{
    /// <summary>Teacher top-K unobserved items per user taken as extra positives (10).</summary>
    public int K { get; init; } = 10;
    /// <summary>Temperature T of the position weights exp(-rank / T) (5).</summary>
    public double T { get; init; } = 5;
    /// <summary>Weight lambda of the RD loss (0.5).</summary>
    public double Lambda { get; init; } = 0.5;
}

/// <summary>
/// RD: each user's top-K unobserved items of the teacher are extra positives with position weights
/// w_r proportional to exp(-rank / T) (summing to 1); loss -sum_r w_r log sigmoid(student score).
/// </summary>
public sealed class RankingDistillation(DistillationContext ctx, RdOptions options) : ItemListDistillation(ctx)
{
    private Tensor? _weights;

    /// <inheritdoc/>
    public override string Name => "rd";

    /// <summary>Each user's teacher top-K items, with the position weights (summing to 1) kept for the epoch.</summary>
    protected override Tensor BuildLists(int epoch, IRecommender student, Random rng)
    {
        var top = Context.TeacherTopK(options.K);
        _weights = Keep(RankSampling.ExponentialRankLogWeights((int)top.shape[1], options.T, top.device).softmax(-1)); // [1, K]
        return top.clone();
    }

    /// <summary>-sum_r w_r log sigmoid(student score) over the lists of the batch's users, times lambda.</summary>
    protected override Tensor ListLoss(Tensor users, Tensor studentScores) =>
        -(nn.functional.logsigmoid(studentScores) * _weights!).sum() * FixedScalars.Of(options.Lambda);
}
