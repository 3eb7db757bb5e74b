using RecDistill.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace RecDistill.Distillation;

/// <summary>KD settings (SPEC 4.2; lambda and K as in the SPEC's reference KD row).</summary>
public sealed record KdOptions
{
    /// <summary>Length K of each user's teacher top-K list the loss runs over (50).</summary>
    public int K { get; init; } = 50;
    /// <summary>Softmax temperature tau of teacher and student scores (1).</summary>
    public double Tau { get; init; } = 1;
    /// <summary>Weight lambda of the KD loss (0.3).</summary>
    public double Lambda { get; init; } = 0.3;
}

/// <summary>
/// KD, Hinton-style soft labels: over each user's teacher top-K items, cross entropy from
/// softmax(teacher / tau) to softmax(student / tau).
/// </summary>
public sealed class KnowledgeDistillation(DistillationContext ctx, KdOptions options) : ItemListDistillation(ctx)
{
    private Tensor? _teacherScores;

    /// <inheritdoc/>
    public override string Name => "kd";

    /// <summary>Each user's teacher top-K items, with the teacher's scores on them kept for the epoch.</summary>
    protected override Tensor BuildLists(int epoch, IRecommender student, Random rng)
    {
        var top = Context.TeacherTopK(options.K);
        _teacherScores = Keep(Context.Teacher.Scores(FixedScalars.Arange(top.shape[0], ScalarType.Int64, top.device), top));
        return top.clone();
    }

    /// <summary>Soft-label cross entropy over the lists of the batch's users, summed, times lambda.</summary>
    protected override Tensor ListLoss(Tensor users, Tensor studentScores) =>
        SoftLabelDistillation.SoftCrossEntropy(_teacherScores!.index_select(0, users), studentScores, null, options.Tau).sum() * FixedScalars.Of(options.Lambda);
}
