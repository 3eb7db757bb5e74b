using RecDistill.Training;

namespace RecDistill.Tests.Training;

public class AtomicFileTests
{
    [Fact]
    public void Writing_a_file_removes_temporaries_of_dead_writers_only()
    {
        var dir = TestData.TempDir();
        var path = Path.Combine(dir, "checkpoint.bin");
        // A writer killed mid-write (no process has this id: above Linux's pid_max) and a live one (pid 1).
        var stale = Path.Combine(dir, ".checkpoint.bin.2147483000.tmp");
        var live = Path.Combine(dir, ".checkpoint.bin.1.tmp");
        var other = Path.Combine(dir, ".model.bin.2147483000.tmp");
        foreach (var f in new[] { stale, live, other }) File.WriteAllText(f, "partial");
        AtomicFile.WriteText(path, "whole");
        Assert.Equal("whole", File.ReadAllText(path));
        Assert.False(File.Exists(stale), "a dead writer's temporary stays behind");
        Assert.True(File.Exists(live), "a live writer's temporary was removed");
        Assert.True(File.Exists(other), "another file's temporary was removed");
    }

    [Fact]
    public void A_serving_model_file_is_written_by_the_same_writer_and_clears_dead_writers_temporaries()
    {
        var dir = TestData.TempDir();
        var path = Path.Combine(dir, "student.rdm");
        // Both name forms: PID alone (earlier builds of the training library) and PID.UNIQUE.
        var stale = new[] { Path.Combine(dir, ".student.rdm.2147483000.tmp"), Path.Combine(dir, ".student.rdm.2147483001.0123abcd.tmp") };
        var live = Path.Combine(dir, ".student.rdm.1.0123abcd.tmp");
        foreach (var f in stale.Append(live)) File.WriteAllText(f, "partial");
        var model = RecDistill.Serving.CompactModel.Create(RecDistill.Serving.ModelBackbone.Bpr, 0, 2, new float[4], new float[6],
            ["u1", "u2"], ["i1", "i2", "i3"], [[0], [1, 2]], RecDistill.Serving.VectorPrecision.Fp32);
        RecDistill.Serving.CompactModelFile.Write(path, model);
        Assert.Equal(3, RecDistill.Serving.CompactModel.Load(path).NumItems);
        Assert.All(stale, f => Assert.False(File.Exists(f), $"a dead writer's temporary stays behind: {f}"));
        Assert.True(File.Exists(live), "a live writer's temporary was removed");
    }

    [Fact]
    public void Concurrent_writers_of_one_file_in_one_process_never_share_a_temporary()
    {
        var dir = TestData.TempDir();
        var path = Path.Combine(dir, "history.csv");
        // Each writer's whole text lands or none; with a temporary shared by the process, writers would
        // collide on it (FileMode.CreateNew) or rename each other's half-written bytes.
        Parallel.For(0, 32, i => AtomicFile.WriteText(path, new string((char)('a' + i % 26), 10_000)));
        var text = File.ReadAllText(path);
        Assert.Equal(10_000, text.Length);
        Assert.All(text, c => Assert.Equal(text[0], c));
        Assert.Empty(Directory.GetFiles(dir, "*.tmp"));
    }

    [Fact]
    public void A_symbolic_link_stays_and_the_file_it_points_to_is_replaced()
    {
        var dir = TestData.TempDir();
        var target = Path.Combine(dir, "real.csv");
        var link = Path.Combine(dir, "latest.csv");
        File.WriteAllText(target, "old");
        File.CreateSymbolicLink(link, target);
        AtomicFile.WriteText(link, "new");
        Assert.NotNull(new FileInfo(link).LinkTarget);
        Assert.Equal("new", File.ReadAllText(target));
    }

    [LinuxFact]
    public async Task A_pipe_or_device_is_written_through_not_replaced_by_a_file()
    {
        Assert.True(AtomicFile.IsSpecialFile("/dev/null"));
        var dir = TestData.TempDir();
        var regular = Path.Combine(dir, "plain.txt");
        File.WriteAllText(regular, "x");
        Assert.False(AtomicFile.IsSpecialFile(regular));
        Assert.False(AtomicFile.IsSpecialFile(dir));
        Assert.False(AtomicFile.IsSpecialFile(Path.Combine(dir, "missing")));

        // A named pipe stands for /dev/stdout redirected into another program: what is written reaches the
        // reader, and the pipe is still a pipe afterwards (a rename would have put a plain file in its place).
        var fifo = Path.Combine(dir, "out.fifo");
        using (var mk = System.Diagnostics.Process.Start("mkfifo", fifo)) mk.WaitForExit();
        Assert.True(AtomicFile.IsSpecialFile(fifo));
        var reader = Task.Run(() => File.ReadAllText(fifo));
        AtomicFile.WriteText(fifo, "user,rank,item\n");
        Assert.Same(reader, await Task.WhenAny(reader, Task.Delay(TimeSpan.FromSeconds(20)))); // else nothing reached the reader
        Assert.Equal("user,rank,item\n", await reader);
        Assert.True(AtomicFile.IsSpecialFile(fifo));
    }
    [LinuxFact]
    public void Standard_output_redirected_to_a_file_keeps_what_the_shell_wrote_around_it()
    {
        // { echo BEFORE; recdistill recommend ... --out /dev/stdout; echo AFTER; } > log.txt: /dev/stdout names
        // log.txt, a regular file; a rename over it, or a fresh open at offset 0, would lose BEFORE or AFTER.
        var dir = TestData.TempDir();
        var model = Path.Combine(dir, "student.rdm");
        RecDistill.Serving.CompactModelFile.Write(model, RecDistill.Serving.CompactModel.Create(RecDistill.Serving.ModelBackbone.Bpr, 0, 2,
            new float[] { 1, 0, 0, 1 }, new float[] { 1, 0, 0, 1, 1, 1 }, ["u1", "u2"], ["i1", "i2", "i3"], [[0], [1]], RecDistill.Serving.VectorPrecision.Fp32));
        var log = Path.Combine(dir, "log.txt");
        var cli = Path.Combine(AppContext.BaseDirectory, "RecDistill.Cli.dll");
        var psi = new System.Diagnostics.ProcessStartInfo("bash") { UseShellExecute = false };
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add($"{{ echo BEFORE; dotnet '{cli}' recommend --model '{model}' --user u1 --k 2 --out /dev/stdout; echo AFTER; }} > '{log}'");
        using (var p = System.Diagnostics.Process.Start(psi)!) p.WaitForExit();
        var lines = File.ReadAllLines(log);
        Assert.Equal("BEFORE", lines[0]);
        Assert.Equal("AFTER", lines[^1]);
        Assert.Contains(lines, l => l.StartsWith("u1,1,", StringComparison.Ordinal));
    }
}
