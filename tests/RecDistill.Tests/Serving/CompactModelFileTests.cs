using System.Buffers.Binary;
using RecDistill.Models;
using RecDistill.Serving;
using RecDistill.Training;
using static RecDistill.Tests.Serving.ServingFixtures;
using static TorchSharp.torch;

namespace RecDistill.Tests.Serving;

public class CompactModelFileTests
{
    private static (CompactModel Model, float[] Users, float[] Items, RecDistill.Data.SplitDataset Data) Sample(VectorPrecision p)
    {
        manual_seed(13);
        var data = TestData.Clustered();
        using var model = new LightGcn(data.NumUsers, data.NumItems, 5, 2, data.Train);
        var (m, u, i) = Export(model, data, p);
        return (m, u, i, data);
    }

    private static string SavedSample(out byte[] bytes)
    {
        var path = Path.Combine(TestData.TempDir(), "m.rdm");
        Sample(VectorPrecision.Int8).Model.Save(path);
        bytes = File.ReadAllBytes(path);
        return path;
    }

    [Theory]
    [InlineData(VectorPrecision.Fp32)]
    [InlineData(VectorPrecision.Fp16)]
    [InlineData(VectorPrecision.Int8)]
    public void Header_id_maps_train_items_and_vectors_round_trip(VectorPrecision p)
    {
        var (m, users, items, data) = Sample(p);
        var dir = TestData.TempDir();
        var path = Path.Combine(dir, "m.rdm");
        m.Save(path);
        Assert.Empty(Directory.GetFiles(dir, "*.tmp"));
        Assert.Equal(m.FileLength, new FileInfo(path).Length);
        var back = CompactModel.Load(path);
        Assert.Equal(ModelBackbone.LightGcn, back.Backbone);
        Assert.Equal(2, back.Layers);
        Assert.Equal(5, back.Dim);
        Assert.Equal(p, back.Precision);
        Assert.Equal(data.NumUsers, back.NumUsers);
        Assert.Equal(data.NumItems, back.NumItems);
        Assert.Equal(data.TrainCount, back.TrainPairs);
        Assert.Equal(data.UserIds, back.UserIds.ToArray());
        Assert.Equal(data.ItemIds, back.ItemIds.ToArray());
        for (int u = 0; u < data.NumUsers; u++)
        {
            Assert.Equal(data.Train[u].Order(), back.TrainItems(u).ToArray());
            Assert.True(back.TryGetUser(data.UserIds[u], out int dense));
            Assert.Equal(u, dense);
        }
        Assert.False(back.TryGetUser("-1", out _));
        var v = new float[5];
        void Check(float[] original, int index, float[] got)
        {
            var row = original.AsSpan(index * 5, 5);
            float maxAbs = 0;
            foreach (var x in row) maxAbs = Math.Max(maxAbs, Math.Abs(x));
            for (int c = 0; c < 5; c++)
            {
                if (p == VectorPrecision.Fp32) Assert.Equal(row[c], got[c]);
                else if (p == VectorPrecision.Fp16) Assert.Equal((float)(Half)row[c], got[c]);
                else Assert.InRange(Math.Abs(row[c] - got[c]), 0, maxAbs / 127 * 0.5001 + 1e-7);
            }
        }
        for (int u = 0; u < data.NumUsers; u++) { back.UserVector(u, v); Check(users, u, v); }
        for (int i = 0; i < data.NumItems; i++) { back.ItemVector(i, v); Check(items, i, v); }
        // Saving what was loaded gives the same bytes.
        var again = Path.Combine(dir, "again.rdm");
        back.Save(again);
        Assert.Equal(File.ReadAllBytes(path), File.ReadAllBytes(again));
    }

    [Fact]
    public void A_corrupted_byte_is_rejected_with_the_file_and_reason()
    {
        var path = SavedSample(out var bytes);
        bytes[bytes.Length / 2] ^= 0x10;
        File.WriteAllBytes(path, bytes);
        var e = Assert.Throws<CompactModelFormatException>(() => CompactModel.Load(path));
        Assert.Equal(path, e.FilePath);
        Assert.StartsWith(path + ": ", e.Message);
        Assert.Contains("checksum mismatch", e.Reason);
        Assert.Contains("corrupt", e.Reason);
    }

    [Fact]
    public void Every_single_byte_change_is_detected()
    {
        SavedSample(out var original);
        for (int pos = 0; pos < original.Length; pos++)
        {
            var b = (byte[])original.Clone();
            b[pos] ^= (byte)(1 << (pos % 8));
            Assert.Throws<CompactModelFormatException>(() => CompactModelFile.Deserialize(b, "m.rdm"));
        }
        CompactModelFile.Deserialize((byte[])original.Clone(), "m.rdm"); // the undamaged bytes still load
    }

    [Theory]
    [InlineData(1)]
    [InlineData(100)]
    [InlineData(-1)]
    public void A_truncated_file_is_rejected(int keep)
    {
        var path = SavedSample(out var bytes);
        int n = keep > 0 ? keep : bytes.Length - 3;
        File.WriteAllBytes(path, bytes[..n]);
        var e = Assert.Throws<CompactModelFormatException>(() => CompactModel.Load(path));
        Assert.Equal(path, e.FilePath);
        Assert.Contains("truncated", e.Reason);
    }

    [Fact]
    public void An_unknown_format_version_is_rejected()
    {
        var path = SavedSample(out var bytes);
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(8), 3);
        File.WriteAllBytes(path, bytes);
        var e = Assert.Throws<CompactModelFormatException>(() => CompactModel.Load(path));
        Assert.Contains("format version 3 is not supported", e.Reason);
        Assert.Contains("versions 1 and 2", e.Reason);
    }

    [Fact]
    public void Other_files_are_rejected_clearly()
    {
        var dir = TestData.TempDir();
        string Reason(string name, byte[]? content)
        {
            var path = Path.Combine(dir, name);
            if (content is not null) File.WriteAllBytes(path, content);
            var e = Assert.Throws<CompactModelFormatException>(() => CompactModel.Load(path));
            Assert.Equal(path, e.FilePath);
            return e.Reason;
        }
        Assert.Contains("no such model file", Reason("missing.rdm", null));
        Assert.Contains("not a RecDistill serving model file", Reason("empty.rdm", Array.Empty<byte>()) + Reason("text.rdm", "user,item\n1,2\n"u8.ToArray()));
        SavedSample(out var good);
        Assert.Contains("unexpected bytes after the end", Reason("long.rdm", good.Concat(new byte[5]).ToArray()));
        // A training model file (model.bin) gets a pointer to export.
        var data = TestData.Clustered();
        using var model = new BprMf(data.NumUsers, data.NumItems, 3);
        ModelFile.Save(Path.Combine(dir, "model.bin"), model);
        Assert.Contains("recdistill export", Reason("model.bin", null));
    }

    [Fact]
    public void Unservable_vectors_and_inconsistent_inputs_are_refused_at_export()
    {
        var raw = new[] { "1", "2" };
        var train = new[] { new[] { 0 }, new[] { 1 } };
        CompactModel Make(float[] users, float[] items, VectorPrecision p, string[]? userIds = null, int[][]? t = null) =>
            CompactModel.Create(ModelBackbone.Bpr, 0, 2, users, items, userIds ?? raw, raw, t ?? train, p);
        float[] ok = { 1, 2, 3, 4 };
        Assert.Contains("non-finite", Assert.Throws<ArgumentException>(() => Make(new float[] { 1, float.NaN, 3, 4 }, ok, VectorPrecision.Fp32)).Message);
        Assert.Contains("fp16 range", Assert.Throws<ArgumentException>(() => Make(ok, new float[] { 1, 70000, 3, 4 }, VectorPrecision.Fp16)).Message);
        Assert.Contains("appears twice", Assert.Throws<ArgumentException>(() => Make(ok, ok, VectorPrecision.Fp32, new[] { "5", "5" })).Message);
        Assert.Contains("empty id", Assert.Throws<ArgumentException>(() => Make(ok, ok, VectorPrecision.Fp32, new[] { "5", "" })).Message);
        Assert.Contains("control character", Assert.Throws<ArgumentException>(() => Make(ok, ok, VectorPrecision.Fp32, new[] { "5", "a\nb" })).Message);
        Assert.Contains("outside", Assert.Throws<ArgumentException>(() => Make(ok, ok, VectorPrecision.Fp32, t: new[] { new[] { 2 }, new int[0] })).Message);
        Assert.Throws<ArgumentException>(() => Make(ok, new float[] { 1, 2, 3 }, VectorPrecision.Fp32));
        // An all-zero vector quantises to zeros with scale 0 (not NaN).
        var z = Make(new float[] { 0, 0, 1, 1 }, ok, VectorPrecision.Int8);
        var v = new float[2];
        z.UserVector(0, v);
        Assert.Equal(new float[] { 0, 0 }, v);
        // Duplicate train items are stored once.
        Assert.Equal(1, Make(ok, ok, VectorPrecision.Fp32, t: new[] { new[] { 1, 1 }, new int[0] }).TrainPairs);
    }
}
