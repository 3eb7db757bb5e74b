using RecDistill.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace RecDistill.Distillation;

/// <summary>KD settings (SPEC 4.2; lambda and K as in the SPEC's reference KD row).</summary>
public sealed record KdOptions
{
    public int K { get; init; } = 50;
    public double Tau { get; init; } = 1;
    public double Lambda { get; init; } = 0.3;
}

/// <summary>
/// KD, Hinton-style soft labels: over each user's teacher top-K items, cross entropy from
/// softmax(teacher / tau) to softmax(student / tau).
/// </summary>
public sealed class KnowledgeDistillation(DistillationContext ctx, KdOptions options) : ItemListDistillation(ctx)
{
    private Tensor? _teacherScores;

    public override string Name => "kd";

    protected override Tensor BuildLists(int epoch, IRecommender student, Random rng)
    {
        var top = Context.TeacherTopK(options.K);
        _teacherScores = Keep(Context.Teacher.Scores(FixedScalars.Arange(top.shape[0], ScalarType.Int64, top.device), top));
        return top.clone();
    }

    protected override Tensor ListLoss(Tensor users, Tensor studentScores) =>
        SoftLabelDistillation.SoftCrossEntropy(_teacherScores!.index_select(0, users), studentScores, null, options.Tau).sum() * FixedScalars.Of(options.Lambda);
}
