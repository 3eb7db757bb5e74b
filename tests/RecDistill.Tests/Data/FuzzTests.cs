using RecDistill.Data;

namespace RecDistill.Tests.Data;

public class FuzzTests
{
    private static readonly byte[] Alphabet = "0123456789012345678901234567890123456789   \t\t\n\n\n\r,;::-+.eaxN\"\""u8.ToArray()
        .Concat(new byte[] { 0xEF, 0xBB, 0xBF, 0xC3, 0xA9, 0xFF, 0xFE, 0x00, 0x80 }).ToArray();

    private static readonly string[] Seeds =
    [
        "3 1 2 3\n2 4 5\n\n1 7\n",
        "1::1193::5::978300760\n1::661::3::978302109\n",
        "user,item,rating,time\n1,2,4.5,100\n2,3,1,200\n",
        "\"user_id\",\"item_id\"\r\n\"U1\",\"A,\"\"1\"\"\"\r\n\"U2\",\"B\"\r\n",
        "0 1 2 3 4\n1 2 3\n2 5\n",
        "0 0 1\n0 1 1\n1 0 1\n",
    ];

    private static byte[] MakeFile(Random rng)
    {
        int kind = rng.Next(3);
        if (kind == 0)
        {
            var b = new byte[rng.Next(0, 300)];
            rng.NextBytes(b);
            return b;
        }
        if (kind == 1)
        {
            var b = new byte[rng.Next(0, 300)];
            for (int k = 0; k < b.Length; k++) b[k] = Alphabet[rng.Next(Alphabet.Length)];
            return b;
        }
        // A valid file with a few random edits: reaches the parsers' later lines and corner cases.
        var list = System.Text.Encoding.UTF8.GetBytes(Seeds[rng.Next(Seeds.Length)]).ToList();
        int edits = rng.Next(1, 5);
        for (int e = 0; e < edits; e++)
        {
            int at = rng.Next(list.Count + 1);
            switch (rng.Next(3))
            {
                case 0: list.Insert(at, Alphabet[rng.Next(Alphabet.Length)]); break;
                case 1: if (at < list.Count) list.RemoveAt(at); break;
                default: if (at < list.Count) list[at] = Alphabet[rng.Next(Alphabet.Length)]; break;
            }
        }
        return list.ToArray();
    }

    [Fact]
    public void Random_files_only_ever_raise_DataFormatException()
    {
        var rng = new Random(20240601);
        using var dir = new TempDir();
        int succeeded = 0, rejected = 0;
        for (int f = 0; f < 200; f++)
        {
            byte[] bytes = MakeFile(rng);
            string file = dir.WriteBytes($"f{f}.txt", bytes);
            string split = dir.Sub($"s{f}");
            File.WriteAllBytes(Path.Combine(split, "train.txt"), bytes);
            File.WriteAllBytes(Path.Combine(split, "test.txt"), bytes);
            if (f % 2 == 0) File.WriteAllBytes(Path.Combine(split, "valid.txt"), bytes);

            var attempts = new List<(string Name, Action Run)>
            {
                ("citeulike", () => DatasetReaders.ReadCiteulike(file)),
                ("movielens", () => DatasetReaders.ReadMovielens(file)),
                ("csv", () => DatasetReaders.ReadDelimited(file)),
                ("csv-forced", () => DatasetReaders.ReadDelimited(file, ",", true)),
                ("lightgcn", () => DatasetReaders.ReadLightgcn(file)),
                ("presplit", () => DatasetReaders.ReadPreSplit(split)),
            };
            foreach (var format in new[] { DataFormat.Citeulike, DataFormat.Movielens, DataFormat.Csv, DataFormat.Lightgcn, DataFormat.Split })
            {
                string path = format == DataFormat.Split ? split : file;
                attempts.Add(($"load-{format}", () => DatasetLoader.Load(new DataOptions { Format = format, Path = path, MinUserInteractions = 1 })));
                attempts.Add(($"load-{format}-time", () => DatasetLoader.Load(new DataOptions { Format = format, Path = path, Split = SplitMethod.Time, PositiveThreshold = 1 })));
            }
            foreach (var (name, run) in attempts)
            {
                try { run(); succeeded++; }
                catch (DataFormatException e)
                {
                    rejected++;
                    Assert.False(string.IsNullOrWhiteSpace(e.Reason));
                    // RFC 4180 text also ends a line at a lone CR.
                    Assert.InRange(e.LineNumber, 0, bytes.Count(b => b is (byte)'\n' or (byte)'\r') + 1);
                }
                catch (Exception e)
                {
                    Assert.Fail($"{name} on file {f} ({Convert.ToHexString(bytes)}) threw {e.GetType().Name}: {e.Message}");
                }
            }
        }
        Assert.True(succeeded > 20, $"only {succeeded} fuzz reads succeeded; the mutations are too destructive to test parsing");
        Assert.True(rejected > 200);
    }
}
