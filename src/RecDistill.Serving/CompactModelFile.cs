using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace RecDistill.Serving;

/// <summary>
/// The serving model file, format version 1 (spec: docs/serving.md). Little-endian throughout:
/// a 64-byte header (magic "RDSERVE\0", version, header size, backbone, precision, dim, layers,
/// user and item counts, train pairs, file length, checksum), then user vectors (row-major), item
/// vectors (dimension-major), user raw ids and item raw ids (int64), train offsets (int64, users + 1)
/// and train items (int32, ascending per user).
/// </summary>
public static class CompactModelFile
{
    public const uint FormatVersion = 1;
    public const int HeaderSize = 64;
    public const int ChecksumOffset = 56;
    /// <summary>Suggested file name extension.</summary>
    public const string Extension = ".rdm";
    private static ReadOnlySpan<byte> Magic => "RDSERVE\0"u8;
    private static ReadOnlySpan<byte> TrainingMagic => "RDMODEL\0"u8;

    /// <summary>File length of a model with these sizes.</summary>
    public static long LengthOf(int dim, int users, int items, VectorPrecision p, long trainPairs) =>
        HeaderSize
        + VectorTable.ByteLength(users, dim, p) + VectorTable.ByteLength(items, dim, p)
        + 8L * users + 8L * items
        + 8L * (users + 1L) + 4L * trainPairs;

    public static void Write(string path, CompactModel model)
    {
        var bytes = Serialize(model);
        AtomicWrite(path, bytes);
    }

    public static byte[] Serialize(CompactModel m)
    {
        long length = m.FileLength;
        if (length > Array.MaxLength)
            throw new ArgumentException($"the model would take {length} bytes; files over {Array.MaxLength} bytes are not supported");
        var b = new byte[length];
        var s = b.AsSpan();
        Magic.CopyTo(s);
        BinaryPrimitives.WriteUInt32LittleEndian(s[8..], FormatVersion);
        BinaryPrimitives.WriteUInt32LittleEndian(s[12..], HeaderSize);
        s[16] = (byte)m.Backbone;
        s[17] = (byte)m.Precision;
        BinaryPrimitives.WriteInt32LittleEndian(s[20..], m.Dim);
        BinaryPrimitives.WriteInt32LittleEndian(s[24..], m.Layers);
        BinaryPrimitives.WriteInt32LittleEndian(s[28..], m.NumUsers);
        BinaryPrimitives.WriteInt32LittleEndian(s[32..], m.NumItems);
        BinaryPrimitives.WriteInt64LittleEndian(s[40..], m.TrainPairs);
        BinaryPrimitives.WriteInt64LittleEndian(s[48..], length);
        int o = HeaderSize;
        m.Users.WriteTo(s[o..]);
        o += (int)VectorTable.ByteLength(m.NumUsers, m.Dim, m.Precision);
        m.Items.WriteTo(s[o..]);
        o += (int)VectorTable.ByteLength(m.NumItems, m.Dim, m.Precision);
        o += Put(s[o..], m.UserRawIds);
        o += Put(s[o..], m.ItemRawIds);
        o += Put(s[o..], m.TrainOffsets);
        for (int u = 0; u < m.NumUsers; u++) o += Put(s[o..], m.TrainItems(u));
        if (o != length) throw new InvalidOperationException($"wrote {o} bytes, expected {length}");
        BinaryPrimitives.WriteUInt64LittleEndian(s[ChecksumOffset..], Kernels.Checksum(s));
        return b;
    }

    private static int Put<T>(Span<byte> dest, ReadOnlySpan<T> values) where T : unmanaged
    {
        var bytes = MemoryMarshal.AsBytes(values);
        bytes.CopyTo(dest);
        return bytes.Length;
    }

    public static CompactModel Read(string path)
    {
        if (!File.Exists(path)) throw new CompactModelFormatException(path, "no such model file");
        long length = new FileInfo(path).Length;
        if (length > Array.MaxLength) throw new CompactModelFormatException(path, $"{length} bytes is too large to be a model file");
        return Deserialize(File.ReadAllBytes(path), path);
    }

    /// <summary>Parses a whole file's bytes; <paramref name="source"/> names it in errors. The buffer's checksum field is zeroed.</summary>
    public static CompactModel Deserialize(byte[] bytes, string source)
    {
        CompactModelFormatException Bad(string reason) => new(source, reason);
        var s = bytes.AsSpan();
        if (s.Length >= 8 && s[..8].SequenceEqual(TrainingMagic))
            throw Bad("this is a training model file (model.bin), not an exported one; run `recdistill export --model RUN_DIR --out FILE` first");
        if (s.Length == 0) throw Bad("empty file, not a RecDistill serving model file");
        if (s.Length < 8 || !s[..8].SequenceEqual(Magic))
            throw Bad(s.Length < 8 && Magic.StartsWith(s) ? $"truncated: {s.Length} bytes" : "not a RecDistill serving model file (bad magic)");
        if (s.Length < 12) throw Bad($"truncated: {s.Length} bytes, shorter than the {HeaderSize}-byte header");
        uint version = BinaryPrimitives.ReadUInt32LittleEndian(s[8..]);
        if (version != FormatVersion)
            throw Bad($"format version {version} is not supported (this build reads version {FormatVersion}); re-export the model with this build");
        if (s.Length < HeaderSize) throw Bad($"truncated: {s.Length} bytes, shorter than the {HeaderSize}-byte header");
        uint headerSize = BinaryPrimitives.ReadUInt32LittleEndian(s[12..]);
        if (headerSize != HeaderSize) throw Bad($"corrupt header: header size {headerSize}, expected {HeaderSize}");
        long declared = BinaryPrimitives.ReadInt64LittleEndian(s[48..]);
        if (declared != s.Length)
            throw Bad(s.Length < declared
                ? $"truncated: the header says {declared} bytes but the file has {s.Length}"
                : declared < HeaderSize ? $"corrupt header: file length {declared}" : $"{s.Length - declared} unexpected bytes after the end of the model ({declared} bytes)");
        ulong stored = BinaryPrimitives.ReadUInt64LittleEndian(s[ChecksumOffset..]);
        s.Slice(ChecksumOffset, 8).Clear();
        ulong actual = Kernels.Checksum(s);
        if (actual != stored) throw Bad($"checksum mismatch (stored {stored:x16}, computed {actual:x16}): the file is corrupt");

        byte backbone = s[16], precision = s[17];
        if (!Enum.IsDefined((ModelBackbone)backbone)) throw Bad($"unknown backbone code {backbone}");
        if (!Enum.IsDefined((VectorPrecision)precision)) throw Bad($"unknown precision code {precision}");
        var p = (VectorPrecision)precision;
        int dim = BinaryPrimitives.ReadInt32LittleEndian(s[20..]);
        int layers = BinaryPrimitives.ReadInt32LittleEndian(s[24..]);
        int users = BinaryPrimitives.ReadInt32LittleEndian(s[28..]);
        int items = BinaryPrimitives.ReadInt32LittleEndian(s[32..]);
        long pairs = BinaryPrimitives.ReadInt64LittleEndian(s[40..]);
        if (dim <= 0 || layers < 0 || users <= 0 || items <= 0 || pairs < 0 || pairs > int.MaxValue)
            throw Bad($"header values out of range (dim {dim}, layers {layers}, users {users}, items {items}, train pairs {pairs})");
        long expected = LengthOf(dim, users, items, p, pairs);
        if (expected != s.Length) throw Bad($"the header's sizes need {expected} bytes but the file has {s.Length}");

        int o = HeaderSize;
        int ub = (int)VectorTable.ByteLength(users, dim, p), ib = (int)VectorTable.ByteLength(items, dim, p);
        var userTable = VectorTable.ReadFrom(s.Slice(o, ub), users, dim, p, dimMajor: false);
        o += ub;
        var itemTable = VectorTable.ReadFrom(s.Slice(o, ib), items, dim, p, dimMajor: true);
        o += ib;
        var userRaw = Take<long>(s, ref o, users);
        var itemRaw = Take<long>(s, ref o, items);
        var offsets = Take<long>(s, ref o, users + 1);
        var train = Take<int>(s, ref o, (int)pairs);
        if (userTable.Scales is { } us && !ScalesValid(us)) throw Bad("a user vector has a negative or non-finite int8 scale");
        if (itemTable.Scales is { } its && !ScalesValid(its)) throw Bad("an item vector has a negative or non-finite int8 scale");
        return new CompactModel((ModelBackbone)backbone, layers, userTable, itemTable, userRaw, itemRaw, offsets, train,
            reason => Bad("inconsistent contents: " + reason));
    }

    private static bool ScalesValid(float[] scales)
    {
        foreach (var x in scales) if (!(x >= 0) || !float.IsFinite(x)) return false;
        return true;
    }

    private static T[] Take<T>(ReadOnlySpan<byte> s, ref int offset, int count) where T : unmanaged
    {
        int size = Marshal.SizeOf<T>() * count;
        var r = MemoryMarshal.Cast<byte, T>(s.Slice(offset, size)).ToArray();
        offset += size;
        return r;
    }

    /// <summary>Writes the whole file or nothing: a temporary file beside it, flushed, then renamed over the target.</summary>
    internal static void AtomicWrite(string path, ReadOnlySpan<byte> bytes)
    {
        var full = Path.GetFullPath(path);
        var dir = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(dir);
        var tmp = Path.Combine(dir, $".{Path.GetFileName(full)}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                fs.Write(bytes);
                fs.Flush(true);
            }
            File.Move(tmp, full, overwrite: true);
        }
        catch
        {
            try { File.Delete(tmp); } catch (IOException) { }
            throw;
        }
    }
}
