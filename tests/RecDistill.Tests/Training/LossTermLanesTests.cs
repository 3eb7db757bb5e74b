using RecDistill.Data;
using RecDistill.Distillation;
using RecDistill.Models;
using RecDistill.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace RecDistill.Tests.Training;

public class LossTermLanesTests
{
    private static (EmbeddingLookup Lookup, BprMf Model) Lookup()
    {
        manual_seed(5);
        var model = new BprMf(30, 40, 6, initStd: 0.5);
        var lookup = model.Lookup(tensor(new long[] { 3, 7, 7, 12, 29 }), tensor(new long[] { 0, 5, 9, 9, 39, 17 }));
        return (lookup, model);
    }

    /// <summary>Terms of different kinds: users only, items only, both, one with a shared parameter, one with random draws.</summary>
    private static List<LossTerm> Terms(Tensor shared) =>
    [
        new("users", l => l.Users(tensor(new long[] { 3, 12 })).Squared().sum()),
        new("items", l => (l.Items(tensor(new long[] { 5, 39 })) * ParameterAliases.Resolve(shared)).sum()),
        new("scores", l => l.ListScores(tensor(new long[] { 7, 29 }), tensor(new long[,] { { 0, 9 }, { 17, 5 } })).sigmoid().sum()),
        new("noisy", l => (l.Users(tensor(new long[] { 7 })) * torch.rand(1, 6, generator: LossGenerator.For(CPU))).sum()
                          .Plus((l.Items(tensor(new long[] { 9 })) * ParameterAliases.Resolve(shared)).sum().exp())),
    ];

    private static (Tensor Users, Tensor Items, Tensor Shared, double[] Values) Run(int lanes)
    {
        var (lookup, model) = Lookup();
        using var _ = model;
        manual_seed(11);
        var shared = torch.linspace(-1, 1, 6).requires_grad_(true);
        using var runner = new LossTermLanes(lanes, 1);
        var values = runner.Backward(lookup, Terms(shared), [shared]);
        return (lookup.UserRows.grad!.clone(), lookup.ItemRows.grad!.clone(), shared.grad!.clone(), values);
    }

    [Fact]
    public void Two_lanes_give_the_bits_of_one()
    {
        var one = Run(1);
        for (int repeat = 0; repeat < 5; repeat++)
        {
            var two = Run(2);
            Assert.Equal(one.Values, two.Values);
            Assert.Equal(one.Users.data<float>().ToArray(), two.Users.data<float>().ToArray());
            Assert.Equal(one.Items.data<float>().ToArray(), two.Items.data<float>().ToArray());
            Assert.Equal(one.Shared.data<float>().ToArray(), two.Shared.data<float>().ToArray());
        }
    }

    [Fact]
    public void Gradients_are_those_of_the_summed_loss()
    {
        var lanes = Run(2);
        // The same terms summed and differentiated by autograd, with each term's draws from the
        // generator the runner gives it (seeded from the default generator, one draw per term).
        var (lookup, model) = Lookup();
        using var _ = model;
        manual_seed(11);
        var shared = torch.linspace(-1, 1, 6).requires_grad_(true);
        var seeds = torch.randint(long.MaxValue, new long[] { 4 }, dtype: ScalarType.Int64).data<long>().ToArray();
        var terms = Terms(shared);
        Tensor? total = null;
        var values = new List<double>();
        for (int t = 0; t < terms.Count; t++)
        {
            using var g = new Generator((ulong)seeds[t], CPU);
            using var __ = LossGenerator.Use(g);
            var l = terms[t].Loss(lookup);
            values.Add(l.item<float>());
            total = total is null ? l : total.Plus(l);
        }
        total!.backward();
        Assert.Equal(values, lanes.Values);
        Assert.True(lookup.UserRows.grad!.allclose(lanes.Users, rtol: 1e-6, atol: 1e-7));
        Assert.True(lookup.ItemRows.grad!.allclose(lanes.Items, rtol: 1e-6, atol: 1e-7));
        Assert.True(shared.grad!.allclose(lanes.Shared, rtol: 1e-6, atol: 1e-7));
    }

    [Fact]
    public void A_parameter_shared_by_several_terms_gets_their_gradients_in_term_order()
    {
        var (lookup, model) = Lookup();
        using var _ = model;
        var shared = torch.zeros(1).requires_grad_(true);
        // Two lanes: the first runs the two large terms, the second the small one, which ends last. In
        // term order (1e8 + 1) - 1e8 is 0 in float32 (1 is below half a unit in the last place of 1e8);
        // in the order the terms finish it would be (1e8 - 1e8) + 1 = 1.
        var terms = new List<LossTerm>
        {
            new("large", l => (ParameterAliases.Resolve(shared) * FixedScalars.Of(1e8f)).sum().Plus(l.Users(tensor(new long[] { 3 })).sum())),
            new("small, late", l => { Thread.Sleep(200); return (ParameterAliases.Resolve(shared) * FixedScalars.Of(1f)).sum(); }),
            new("large, negative", l => (ParameterAliases.Resolve(shared) * FixedScalars.Of(-1e8f)).sum()),
        };
        using var runner = new LossTermLanes(2, 1);
        runner.Backward(lookup, terms, [shared]);
        Assert.Equal(0f, shared.grad!.item<float>());
        Assert.Equal(6f, lookup.UserRows.grad!.sum().item<float>()); // the first term's user row, d = 6
        // Again, into the gradient that now exists (added in place, as after the first batch).
        shared.grad!.fill_(FixedScalars.Of(16f)); // 1e8 + 16 is exact; in finish order the result would be 17
        runner.Backward(lookup, terms, [shared]);
        Assert.Equal(16f, shared.grad!.item<float>());
    }

    [Fact]
    public void Each_term_sees_its_own_copies_of_the_parameters()
    {
        var (lookup, model) = Lookup();
        using var _ = model;
        var shared = torch.ones(6).requires_grad_(true);
        var seen = new System.Collections.Concurrent.ConcurrentBag<Tensor>();
        LossTerm Term(string name, float c) => new(name, l =>
        {
            var p = ParameterAliases.Resolve(shared);
            seen.Add(p);
            return (l.Items(tensor(new long[] { 5 })) * p).sum() * FixedScalars.Of(c);
        });
        using var runner = new LossTermLanes(2, 1);
        runner.Backward(lookup, [Term("a", 1), Term("b", 2), Term("c", 3)], [shared]);
        Assert.Equal(3, seen.Count);
        Assert.All(seen, p => Assert.False(ReferenceEquals(p, shared)));
        Assert.Equal(3, seen.Distinct(ReferenceEqualityComparer.Instance).Count());
        Assert.Same(shared, ParameterAliases.Resolve(shared)); // outside a term: the parameter itself
        // d/d shared of the sum of c <item 5, shared> over c = 1, 2, 3.
        Assert.True(shared.grad!.allclose(model.ItemWeight[5].detach() * FixedScalars.Of(6)));
    }

    [Fact]
    public void A_failing_term_is_reported_and_the_lanes_stay_usable()
    {
        var (lookup, model) = Lookup();
        using var _ = model;
        using var runner = new LossTermLanes(2, 1);
        var shared = torch.ones(6).requires_grad_(true);
        var terms = Terms(shared);
        terms.Add(new LossTerm("broken", l => l.Users(tensor(new long[] { 3 }))));  // not a scalar: item() throws
        var error = Assert.ThrowsAny<Exception>(() => runner.Backward(lookup, terms, [shared]));
        Assert.IsNotType<AggregateException>(error); // the term's own exception, rethrown as it was
        // The same lanes then give what fresh lanes give, values and gradients, bit for bit (the terms
        // without random draws: a lane's generator has moved on with the failed call, and the trainer
        // reseeds it every epoch).
        (double[] Values, float[] Users, float[] Items, float[] Shared) With(LossTermLanes lanes)
        {
            var (again, m) = Lookup();
            using var __ = m;
            var shared2 = torch.linspace(-1, 1, 6).requires_grad_(true);
            var v = lanes.Backward(again, Terms(shared2).Take(3).ToList(), [shared2]);
            return (v, again.UserRows.grad!.data<float>().ToArray(), again.ItemRows.grad!.data<float>().ToArray(), shared2.grad!.data<float>().ToArray());
        }
        var reused = With(runner);
        using var freshLanes = new LossTermLanes(2, 1);
        var fresh = With(freshLanes);
        Assert.Equal(fresh.Values, reused.Values);
        Assert.Equal(fresh.Users, reused.Users);
        Assert.Equal(fresh.Items, reused.Items);
        Assert.Equal(fresh.Shared, reused.Shared);
        Assert.Equal(3, reused.Values.Length);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Mkd_training_gives_the_same_model_on_one_and_two_threads(bool lightGcn)
    {
        float[] Train(int threads)
        {
            using var __ = TestData.Threads(threads);
            manual_seed(7);
            var data = TestData.Clustered(users: 40, items: 60);
            using var teacherModel = new BprMf(data.NumUsers, data.NumItems, 16, initStd: 0.5);
            using var teacher = FrozenTeacher.From(teacherModel);
            using var ctx = new DistillationContext(teacher, data, 4, CPU);
            var options = DistillationOptions.Defaults("mkd", lightGcn ? Backbone.LightGcn : Backbone.Bpr) with
            {
                Nkd = new NkdOptions { Experts = 2, PcaDim = 8 },
                Cpd = new CpdOptions { Experts = 3, TopN = 20 },
                Sld = new SldOptions { K = 5, L = 5, MxK = 15, Lambda = 1 },
            };
            manual_seed(8);
            using var kd = DistillationMethods.Create(options, ctx)!;
            using EmbeddingModel student = lightGcn ? new LightGcn(data.NumUsers, data.NumItems, 4, 2, data.Train) : new BprMf(data.NumUsers, data.NumItems, 4);
            new Trainer(new TrainOptions { MaxEpochs = 2, EvalEvery = 1, BatchSize = 64, LearningRate = 0.01, Seed = 3 }).Fit(student, data, kd);
            return student.UserWeight.detach().data<float>().ToArray().Concat(student.ItemWeight.detach().data<float>().ToArray()).ToArray();
        }
        var one = Train(1);
        var two = Train(2);
        Assert.Equal(one, two);
    }
}
