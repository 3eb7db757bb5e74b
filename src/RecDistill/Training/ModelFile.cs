using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using RecDistill.Data;
using RecDistill.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace RecDistill.Training;

/// <summary>What is needed to rebuild a model around its saved tables.</summary>
public sealed record ModelConfig(Backbone Backbone, int Dim, int Layers, int NumUsers, int NumItems);

/// <summary>
/// The trained-model file (model.bin): magic, format version, a JSON header (ModelConfig), the two
/// trainable tables as little-endian float32, and an FNV-1a 64 checksum of everything before it.
/// Written through a temporary file and a rename, so a reader never sees half a file.
/// </summary>
public static class ModelFile
{
    /// <summary>Name of the model file in a run directory.</summary>
    public const string FileName = "model.bin";
    private static readonly byte[] Magic = "RDMODEL\0"u8.ToArray();
    /// <summary>The model file format version written and read.</summary>
    public const int FormatVersion = 1;

    /// <summary>A new model (fresh initial weights) of the configuration's backbone and shape; LightGCN's graph comes from the data's train items.</summary>
    public static IRecommender Create(ModelConfig c, SplitDataset data, Device device) => c.Backbone switch
    {
        Backbone.Bpr => new BprMf(c.NumUsers, c.NumItems, c.Dim, device),
        Backbone.LightGcn => new LightGcn(c.NumUsers, c.NumItems, c.Dim, c.Layers, data.Train, device),
        _ => throw new ArgumentOutOfRangeException(nameof(c)),
    };

    /// <summary>The configuration that rebuilds a model of this backbone and shape.</summary>
    public static ModelConfig ConfigOf(IRecommender m) =>
        new(m.Backbone, m.Dim, m is LightGcn g ? g.Layers : 0, m.NumUsers, m.NumItems);

    /// <summary>Writes the model's configuration and its two tables atomically.</summary>
    public static void Save(string path, IRecommender model)
    {
        var header = JsonSerializer.SerializeToUtf8Bytes(ConfigOf(model), JsonOptions.Default);
        using var ms = new MemoryStream();
        ms.Write(Magic);
        WriteInt(ms, FormatVersion);
        WriteInt(ms, header.Length);
        ms.Write(header);
        TensorCopy.WriteTo<float>(ms, model.UserWeight);
        TensorCopy.WriteTo<float>(ms, model.ItemWeight);
        var body = ms.ToArray();
        ulong sum = Fnv1a(body);
        var tail = new byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(tail, sum);
        AtomicFile.Write(path, s => { s.Write(body); s.Write(tail); });
    }

    /// <summary>Reads and checks a model file; a missing, damaged or unknown-version file is a <see cref="DataFormatException"/>.</summary>
    public static (ModelConfig Config, float[] Users, float[] Items) Read(string path)
    {
        if (!File.Exists(path)) throw new DataFormatException(path, 0, "model file does not exist");
        var bytes = File.ReadAllBytes(path);
        if (bytes.Length < 24 || !bytes.AsSpan(0, 8).SequenceEqual(Magic))
            throw new DataFormatException(path, 0, "not a RecDistill model file");
        int version = BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(8));
        if (version != FormatVersion)
            throw new DataFormatException(path, 0, $"model format version {version} is not supported (this build reads {FormatVersion})");
        ulong stored = BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(bytes.Length - 8));
        if (Fnv1a(bytes.AsSpan(0, bytes.Length - 8)) != stored)
            throw new DataFormatException(path, 0, "checksum mismatch: the file is corrupt or truncated");
        int hlen = BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(12));
        var config = JsonSerializer.Deserialize<ModelConfig>(bytes.AsSpan(16, hlen), JsonOptions.Default)
                     ?? throw new DataFormatException(path, 0, "empty model header");
        long nu = (long)config.NumUsers * config.Dim, ni = (long)config.NumItems * config.Dim;
        long expected = 16 + hlen + 4 * (nu + ni) + 8;
        if (bytes.Length != expected) throw new DataFormatException(path, 0, $"size {bytes.Length} does not match its header ({expected})");
        var floats = MemoryMarshal.Cast<byte, float>(bytes.AsSpan(16 + hlen, (int)(4 * (nu + ni))));
        return (config, floats[..(int)nu].ToArray(), floats[(int)nu..].ToArray());
    }

    /// <summary>Rebuilds the model from a file; the dataset must have the same users and items.</summary>
    public static IRecommender Load(string path, SplitDataset data, Device device)
    {
        var (c, users, items) = Read(path);
        if (c.NumUsers != data.NumUsers || c.NumItems != data.NumItems)
            throw new DataFormatException(path, 0,
                $"the model has {c.NumUsers} users and {c.NumItems} items but the dataset has {data.NumUsers} and {data.NumItems}: was it trained on other data or with other cleaning options?");
        var model = Create(c, data, device);
        ((EmbeddingModel)model).Load(users, items);
        return model;
    }


    private static void WriteInt(Stream s, int v)
    {
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(b, v);
        s.Write(b);
    }

    /// <summary>The FNV-1a 64-bit hash of the bytes (the file's checksum).</summary>
    public static ulong Fnv1a(ReadOnlySpan<byte> data)
    {
        ulong h = 14695981039346656037UL;
        foreach (var b in data) { h ^= b; h *= 1099511628211UL; }
        return h;
    }
}

/// <summary>Writes a file whole or not at all: a temporary file beside it, then a rename.</summary>
public static class AtomicFile
{
    /// <summary>
    /// Writes <paramref name="path"/> through <paramref name="write"/> into a temporary file, then renames it into place.
    /// A path that is a pipe, terminal or device (say <c>/dev/stdout</c>) is written straight through: renaming a file
    /// over it would replace the device's name with a plain file. A symbolic link is followed, so the link stays and
    /// the file it points to is replaced. Temporaries of this file left by writers killed mid-write are removed.
    /// </summary>
    public static void Write(string path, Action<Stream> write) => RecDistill.Serving.OutputPath.WriteAtomically(path, write);

    /// <summary>
    /// Whether <paramref name="path"/> exists and is neither a regular file nor a directory (a character
    /// device, pipe or socket such as <c>/dev/stdout</c>, after following links): <see cref="Write"/> writes
    /// such a path straight through.
    /// </summary>
    public static bool IsSpecialFile(string path) => RecDistill.Serving.OutputPath.IsSpecial(path);

    /// <summary>Writes text as UTF-8, atomically.</summary>
    public static void WriteText(string path, string text) =>
        Write(path, s => s.Write(Encoding.UTF8.GetBytes(text)));
}

/// <summary>The JSON settings of every file the library writes and reads.</summary>
public static class JsonOptions
{
    /// <summary>Indented, snake_case property names, enums as kebab-case strings.</summary>
    public static readonly JsonSerializerOptions Default = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        Converters = { new System.Text.Json.Serialization.JsonStringEnumConverter(JsonNamingPolicy.KebabCaseLower) },
    };
}
