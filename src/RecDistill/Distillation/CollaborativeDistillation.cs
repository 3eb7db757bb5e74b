using RecDistill.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace RecDistill.Distillation;

/// <summary>CD settings (Lee et al. 2019): L items sampled by rank from the teacher's top-N, soft targets sigmoid((t + t2) / t1).</summary>
public sealed record CdOptions
{
    /// <summary>Items L sampled per user each epoch (10).</summary>
    public int L { get; init; } = 10;
    /// <summary>Length N of the teacher's top list the items are sampled from (100).</summary>
    public int TopN { get; init; } = 100;
    /// <summary>Temperature T of the sampling weights exp(-rank / T) (10).</summary>
    public double T { get; init; } = 10;
    /// <summary>Temperature t1 of the soft target sigmoid((teacher score + t2) / t1) (1).</summary>
    public double T1 { get; init; } = 1;
    /// <summary>Offset t2 of the soft target sigmoid((teacher score + t2) / t1) (0).</summary>
    public double T2 { get; init; } = 0;
    /// <summary>Weight lambda of the CD loss (0.5).</summary>
    public double Lambda { get; init; } = 0.5;
}

/// <summary>
/// CD: per epoch, L items per user sampled without replacement from the teacher's top-N with
/// probability proportional to exp(-rank / T); the student's sigmoid score is fitted to the soft
/// target sigmoid((teacher score + t2) / t1) by binary cross entropy.
/// </summary>
public sealed class CollaborativeDistillation(DistillationContext ctx, CdOptions options) : ItemListDistillation(ctx)
{
    private Tensor? _targets;

    /// <inheritdoc/>
    public override string Name => "cd";

    /// <summary>L items per user drawn from the teacher's top-N by rank, with their soft targets kept for the epoch.</summary>
    protected override Tensor BuildLists(int epoch, IRecommender student, Random rng)
    {
        var top = Context.TeacherTopK(options.TopN);
        var logw = RankSampling.ExponentialRankLogWeights((int)top.shape[1], options.T, top.device).expand(top.shape[0], -1);
        var items = top.gather(1, RankSampling.WithoutReplacement(logw, options.L));
        var teacher = Context.Teacher.Scores(FixedScalars.Arange(top.shape[0], ScalarType.Int64, top.device), items);
        _targets = Keep((teacher.Plus(FixedScalars.Of(options.T2)) / FixedScalars.Of(options.T1)).sigmoid());
        return items;
    }

    /// <summary>Binary cross entropy of the student's scores to the soft targets, summed, times lambda.</summary>
    protected override Tensor ListLoss(Tensor users, Tensor studentScores) =>
        nn.functional.binary_cross_entropy_with_logits(studentScores, _targets!.index_select(0, users), reduction: nn.Reduction.Sum) * FixedScalars.Of(options.Lambda);
}
