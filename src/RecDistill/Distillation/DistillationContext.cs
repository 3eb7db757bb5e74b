using RecDistill.Evaluation;
using RecDistill.Data;
using RecDistill.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace RecDistill.Distillation;

/// <summary>
/// What every method shares: the frozen teacher, the data, the student's shape, and the teacher's
/// top-K lists (computed once, in user batches, and cut to each method's K).
/// </summary>
public sealed class DistillationContext : IDisposable
{
    private Tensor? _teacherTopK;

    /// <summary>Throws <see cref="ArgumentException"/> when the teacher's user or item count differs from the data's.</summary>
    public DistillationContext(FrozenTeacher teacher, SplitDataset data, int studentDim, Device device)
    {
        if (teacher.NumUsers != data.NumUsers || teacher.NumItems != data.NumItems)
            throw new ArgumentException($"the teacher has {teacher.NumUsers} users and {teacher.NumItems} items but the data has {data.NumUsers} and {data.NumItems}");
        Teacher = teacher; Data = data; StudentDim = studentDim; Device = device;
    }

    /// <summary>The frozen teacher.</summary>
    public FrozenTeacher Teacher { get; }
    /// <summary>The teacher's run directory, when it was loaded from one (recorded in students' metrics.json).</summary>
    public string? TeacherDir { get; init; }
    /// <summary>The SHA-256 of the teacher's model.bin when it was loaded from a run directory: a student's checkpoint records it.</summary>
    internal string? TeacherModelSha256 { get; init; }
    /// <summary>The split data; its train items are left out of the teacher's lists.</summary>
    public SplitDataset Data { get; }
    /// <summary>The student's dimension d_S, the projectors' input width.</summary>
    public int StudentDim { get; }
    /// <summary>The device of the methods' tensors and projectors.</summary>
    public Device Device { get; }

    /// <summary>The teacher's top-k unobserved items per user [users, k], best first (a view into one cache).</summary>
    public Tensor TeacherTopK(int k)
    {
        k = Math.Min(k, Data.NumItems);
        if (_teacherTopK is null || _teacherTopK.shape[1] < k)
        {
            _teacherTopK?.Dispose();
            // Kept across epochs: detached from whatever dispose scope the first caller runs in.
            _teacherTopK = TopKRanking.Compute(Teacher.Users, Teacher.Items, Data.Train, Math.Max(k, 100)).DetachFromDisposeScope();
        }
        return _teacherTopK.narrow(1, 0, k);
    }

    /// <summary>Frees the cached teacher lists (not the teacher).</summary>
    public void Dispose() => _teacherTopK?.Dispose();
}
