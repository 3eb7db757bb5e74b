using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text.Json;
using RecDistill.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace RecDistill.Training;

/// <summary>Where a run stood at the end of an epoch: enough to continue it as if never stopped.</summary>
public sealed record TrainingCheckpointHeader
{
    /// <summary>The last epoch completed.</summary>
    public int Epoch { get; init; }
    /// <summary>Whether training had ended (early stop or the last epoch).</summary>
    public bool Finished { get; init; }
    /// <summary>Whether patience had run out.</summary>
    public bool EarlyStopped { get; init; }
    /// <summary>Best validation score of the selection metric so far.</summary>
    public double Best { get; init; }
    /// <summary>The epoch of <see cref="Best"/>.</summary>
    public int BestEpoch { get; init; }
    /// <summary>Validations since the last improvement (early stopping's count).</summary>
    public int BadEvals { get; init; }
    /// <summary>Training time so far.</summary>
    public double ElapsedSeconds { get; init; }
    /// <summary>Validation metrics at the best epoch.</summary>
    public Dictionary<string, double> BestValid { get; init; } = new();
    /// <summary>Validation metrics of the latest validation; null before the first.</summary>
    public Dictionary<string, double>? LastValid { get; init; }
    /// <summary>Every epoch completed.</summary>
    public List<EpochRecord> History { get; init; } = new();
    /// <summary>Training options, model, method and its settings, and data options that wrote the checkpoint; a resume must match them.</summary>
    public string Fingerprint { get; init; } = "";
    /// <summary>Step count of the row-sparse optimizer (RowSparseAdam) of BPR's tables.</summary>
    public long SparseSteps { get; init; }
    /// <summary>Step count of each parameter of the dense optimizer (DenseAdam), in its order.</summary>
    public List<long>? DenseSteps { get; init; }
    /// <summary>Names of the tensors stored after the header, in file order.</summary>
    public List<string> Tensors { get; init; } = new();
    /// <summary>Shape of each stored tensor, aligned with <see cref="Tensors"/>.</summary>
    public List<long[]> Shapes { get; init; } = new();
}

/// <summary>
/// The resume file (checkpoint.bin): magic, version, a JSON header, named float32 tensors
/// (current weights, optimizer moments, distillation parameters) and the dense optimizer's own state.
/// Written through a temporary file and a rename: a run killed at any moment leaves the previous
/// file whole. Random state is not stored: every epoch reseeds from (seed, epoch).
/// </summary>
public static class TrainingCheckpoint
{
    /// <summary>Name of the checkpoint file in a run directory.</summary>
    public const string FileName = "checkpoint.bin";
    private static readonly byte[] Magic = "RDCKPT\0\0"u8.ToArray();
    /// <summary>The checkpoint format version written and read.</summary>
    public const int FormatVersion = 1;
    // Before the first validation the best score is -infinity, and diagnostics may be NaN.
    private static readonly JsonSerializerOptions HeaderJson = new(JsonOptions.Default)
    {
        NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    /// <summary>Writes the checkpoint atomically: the header (with the tensors' names and shapes), the named tensors, then what <paramref name="writeOptimizer"/> writes.</summary>
    public static void Save(string path, TrainingCheckpointHeader header, IReadOnlyList<(string Name, Tensor Value)> tensors,
        Action<BinaryWriter>? writeOptimizer)
    {
        header = header with { Tensors = tensors.Select(t => t.Name).ToList(), Shapes = tensors.Select(t => t.Value.shape).ToList() };
        var json = JsonSerializer.SerializeToUtf8Bytes(header, HeaderJson);
        AtomicFile.Write(path, s =>
        {
            using var w = new BinaryWriter(s, System.Text.Encoding.UTF8, leaveOpen: true);
            w.Write(Magic);
            w.Write(FormatVersion);
            w.Write(json.Length);
            w.Write(json);
            w.Flush();
            foreach (var (_, t) in tensors) TensorCopy.WriteTo<float>(s, t);
            using var opt = new MemoryStream();
            if (writeOptimizer is not null)
                using (var ow = new BinaryWriter(opt, System.Text.Encoding.UTF8, leaveOpen: true)) writeOptimizer(ow);
            w.Write(opt.Length);
            w.Write(opt.GetBuffer(), 0, (int)opt.Length);
            w.Write(Magic); // end marker: a file cut short lacks it
        });
    }

    /// <summary>Reads a checkpoint; the tensors come back by name, the optimizer state as raw bytes.</summary>
    public static (TrainingCheckpointHeader Header, Dictionary<string, Tensor> Tensors, byte[] Optimizer) Load(string path)
    {
        byte[] bytes;
        try { bytes = File.ReadAllBytes(path); }
        catch (IOException e) { throw new DataFormatException(path, 0, $"cannot read the checkpoint: {e.Message}"); }
        var span = bytes.AsSpan();
        if (bytes.Length < 24 || !span[..8].SequenceEqual(Magic))
            throw new DataFormatException(path, 0, "not a RecDistill training checkpoint");
        int version = BinaryPrimitives.ReadInt32LittleEndian(span[8..]);
        if (version != FormatVersion)
            throw new DataFormatException(path, 0, $"checkpoint format version {version} is not supported (this build reads {FormatVersion})");
        if (!span[^8..].SequenceEqual(Magic))
            throw new DataFormatException(path, 0, "the checkpoint is truncated");
        int hlen = BinaryPrimitives.ReadInt32LittleEndian(span[12..]);
        TrainingCheckpointHeader header;
        try
        {
            header = JsonSerializer.Deserialize<TrainingCheckpointHeader>(span.Slice(16, hlen), HeaderJson)
                     ?? throw new JsonException("empty header");
        }
        catch (Exception e) when (e is JsonException or ArgumentOutOfRangeException)
        {
            throw new DataFormatException(path, 0, $"unreadable checkpoint header ({e.Message})");
        }
        long offset = 16 + hlen;
        var tensors = new Dictionary<string, Tensor>();
        for (int k = 0; k < header.Tensors.Count; k++)
        {
            long n = header.Shapes[k].Aggregate(1L, (a, b) => a * b);
            if (offset + 4 * n + 8 > bytes.Length) throw new DataFormatException(path, 0, "the checkpoint is shorter than its header says");
            var data = MemoryMarshal.Cast<byte, float>(span.Slice((int)offset, (int)(4 * n))).ToArray();
            tensors[header.Tensors[k]] = torch.tensor(data).reshape(header.Shapes[k]);
            offset += 4 * n;
        }
        long optLen = BinaryPrimitives.ReadInt64LittleEndian(span[(int)offset..]);
        offset += 8;
        if (optLen < 0 || offset + optLen + 8 != bytes.Length)
            throw new DataFormatException(path, 0, "the checkpoint's size does not match its header");
        return (header, tensors, span.Slice((int)offset, (int)optLen).ToArray());
    }

    /// <summary>The seed of one epoch's random streams (negative sampling, dropout, method samples).</summary>
    public static long EpochSeed(int seed, int epoch)
    {
        // SplitMix64 of (seed, epoch): well-spread seeds for neighbouring epochs.
        ulong z = unchecked((ulong)seed * 0x9E3779B97F4A7C15UL + (ulong)epoch * 0xBF58476D1CE4E5B9UL + 0x94D049BB133111EBUL);
        z = unchecked((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL);
        z = unchecked((z ^ (z >> 27)) * 0x94D049BB133111EBUL);
        return (long)((z ^ (z >> 31)) >> 1);
    }
}
