using RecDistill.Data;
using RecDistill.Evaluation;
using RecDistill.Models;
using RecDistill.Serving;
using RecDistill.Training;
using TorchSharp;

namespace RecDistill.Runs;

/// <summary>What an export wrote, and (fp16, int8) what the precision costs against exact fp32 vectors.</summary>
public sealed record ExportSummary(string File, Backbone Backbone, int Dim, int Layers, int Users, int Items, long TrainPairs,
    VectorPrecision Precision, long Bytes, long Fp32Bytes, QuantizationCheck? Check);

/// <summary>A quantised file against fp32: mean top-20 overlap on a sample of users, and test Recall/NDCG@20 of both.</summary>
public sealed record QuantizationCheck(int SampledUsers, int TestUsers, double Top20Overlap,
    double Fp32Recall20, double Fp32Ndcg20, double Recall20, double Ndcg20);

/// <summary>From a trained model and its data to a <see cref="CompactModel"/>: the serving file.</summary>
public static class ModelExport
{
    /// <summary>Users compared for the quantisation check (evenly spaced; all when fewer).</summary>
    public const int CheckUsers = 2000;

    /// <summary>
    /// Writes the run's final vectors, id maps and train items to <paramref name="file"/> (atomically) and reads it
    /// back; for fp16/int8 with <paramref name="check"/>, measures the accuracy cost against fp32.
    /// </summary>
    public static ExportSummary Export(string runDir, string file, VectorPrecision precision, bool check = true,
        int? threads = null, IRunReporter? reporter = null)
    {
        // Refused before the model and data load (which can take a while), not after.
        if (Directory.Exists(file)) throw new UserErrorException($"{file} is a directory: give the model file to write (e.g. {Path.Combine(file, "student.rdm")}), or export NumPy files (--format npy; ModelExport.ExportNpy) into a directory");
        if (!Enum.IsDefined(precision)) throw new ArgumentOutOfRangeException(nameof(precision), precision, "not a VectorPrecision: fp32, fp16 or int8");
        var (record, _, data, model) = RunDirectory.Load(runDir, new ComputeOptions("cpu", threads), null, reporter);
        using var _model = model;
        var (users, items) = FinalVectors(model);
        int layers = model is LightGcn g ? g.Layers : 0;
        ToCompact(model, users, items, data, precision).Save(file);
        // Read back what a server will read: proves the file is whole, and the check below uses it.
        var written = CompactModel.Load(file);
        long size = new FileInfo(file).Length;
        long fp32Size = CompactModelFile.LengthOf(written.Dim, written.NumUsers, written.NumItems, VectorPrecision.Fp32, written.TrainPairs,
            CompactModelFile.IdBytes(written.UserIds), CompactModelFile.IdBytes(written.ItemIds));
        QuantizationCheck? quality = precision != VectorPrecision.Fp32 && check
            ? Compare(ToCompact(model, users, items, data, VectorPrecision.Fp32), written, data, threads ?? Environment.ProcessorCount)
            : null;
        return new ExportSummary(file, record.Model.Backbone, written.Dim, layers, written.NumUsers, written.NumItems,
            written.TrainPairs, precision, size, fp32Size, quality);
    }

    /// <summary>
    /// Writes the run's final vectors for other ecosystems into <paramref name="dir"/>: users.npy and
    /// items.npy (float32, rows in the order of user_ids.txt and item_ids.txt, one id a line).
    /// Each file is written whole or not at all. Returns the files' paths.
    /// </summary>
    public static IReadOnlyList<string> ExportNpy(string runDir, string dir, int? threads = null, IRunReporter? reporter = null)
    {
        // Refused before the model and data load, as Export does.
        if (File.Exists(dir)) throw new UserErrorException($"{dir} is a file; the NumPy export writes a directory");
        var (_, _, data, model) = RunDirectory.Load(runDir, new ComputeOptions("cpu", threads), null, reporter);
        using var _model = model;
        var (users, items) = FinalVectors(model);
        Directory.CreateDirectory(dir);
        var files = new[] { "users.npy", "items.npy", "user_ids.txt", "item_ids.txt" }.Select(f => Path.Combine(dir, f)).ToArray();
        AtomicFile.Write(files[0], s => Npy.WriteFloat32(s, users, data.NumUsers, model.Dim));
        AtomicFile.Write(files[1], s => Npy.WriteFloat32(s, items, data.NumItems, model.Dim));
        // Ids hold no line breaks (the readers refuse control characters), so one a line is unambiguous.
        AtomicFile.WriteText(files[2], string.Concat(data.UserIds.Select(id => id + "\n")));
        AtomicFile.WriteText(files[3], string.Concat(data.ItemIds.Select(id => id + "\n")));
        return files;
    }

    /// <summary>The model's final user and item vectors (LightGCN: after propagation), row-major, on the CPU.</summary>
    public static (float[] Users, float[] Items) FinalVectors(IRecommender model)
    {
        using var _ = torch.no_grad();
        var (u, i) = model.FinalEmbeddings();
        using (u) using (i)
            return (TensorCopy.ToArray<float>(u), TensorCopy.ToArray<float>(i));
    }

    /// <summary>The model's final vectors with the data's raw ids and train items, as a serving model in <paramref name="precision"/>.</summary>
    public static CompactModel ToCompact(IRecommender model, SplitDataset data, VectorPrecision precision)
    {
        var (users, items) = FinalVectors(model);
        return ToCompact(model, users, items, data, precision);
    }

    /// <summary>Final vectors, the data's raw id maps and its train items (the items to leave out when serving).</summary>
    public static CompactModel ToCompact(IRecommender model, float[] users, float[] items, SplitDataset data, VectorPrecision precision)
    {
        if (model.NumUsers != data.NumUsers || model.NumItems != data.NumItems)
            throw new ArgumentException($"the model has {model.NumUsers} users and {model.NumItems} items but the data has {data.NumUsers} and {data.NumItems}");
        var backbone = model.Backbone == Backbone.LightGcn ? ModelBackbone.LightGcn : ModelBackbone.Bpr;
        int layers = model is LightGcn g ? g.Layers : 0;
        return CompactModel.Create(backbone, layers, model.Dim, users, items, data.UserIds, data.ItemIds, data.Train, precision);
    }

    private static QuantizationCheck Compare(CompactModel exact, CompactModel quantized, SplitDataset data, int threads)
    {
        var sample = RankingOverlap.SampleUsers(exact, CheckUsers);
        double overlap = RankingOverlap.Mean(new Recommender(exact), new Recommender(quantized), sample, 20, threads);
        var evaluator = new FullRankingEvaluator(data);
        EvaluationResult Test(CompactModel m)
        {
            var (u, i) = Dequantized(m);
            using var ut = torch.tensor(u, m.NumUsers, m.Dim);
            using var it = torch.tensor(i, m.NumItems, m.Dim);
            return evaluator.Evaluate(ut, it, EvalSplit.Test);
        }
        var e = Test(exact);
        var q = Test(quantized);
        return new QuantizationCheck(sample.Length, e.Users, overlap, e["recall@20"], e["ndcg@20"], q["recall@20"], q["ndcg@20"]);
    }

    private static (float[] Users, float[] Items) Dequantized(CompactModel m)
    {
        var u = new float[(long)m.NumUsers * m.Dim];
        var i = new float[(long)m.NumItems * m.Dim];
        for (int x = 0; x < m.NumUsers; x++) m.UserVector(x, u.AsSpan(x * m.Dim, m.Dim));
        for (int x = 0; x < m.NumItems; x++) m.ItemVector(x, i.AsSpan(x * m.Dim, m.Dim));
        return (u, i);
    }
}

/// <summary>NumPy's .npy format, version 1.0: magic, header length, a Python dict literal padded to 64 bytes, raw data.</summary>
public static class Npy
{
    /// <summary>A row-major float32 matrix of <paramref name="rows"/> x <paramref name="columns"/>, little-endian.</summary>
    public static void WriteFloat32(Stream stream, ReadOnlySpan<float> values, int rows, int columns)
    {
        if ((long)rows * columns != values.Length) throw new ArgumentException($"{values.Length} values are not {rows} x {columns}");
        string header = $"{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, {columns}), }}";
        int unpadded = 6 + 2 + 2 + header.Length + 1; // magic, version, length, header, newline
        header += new string(' ', (64 - unpadded % 64) % 64) + "\n";
        stream.Write([0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y']);
        stream.WriteByte(1);
        stream.WriteByte(0);
        Span<byte> length = stackalloc byte[2];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt16LittleEndian(length, checked((ushort)header.Length));
        stream.Write(length);
        stream.Write(System.Text.Encoding.ASCII.GetBytes(header));
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("npy export writes little-endian floats");
        stream.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(values));
    }
}

