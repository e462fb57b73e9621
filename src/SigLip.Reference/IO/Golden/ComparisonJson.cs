using System.Globalization;
using System.Text.Json;
using SigLip.Reference.Numerics;

namespace SigLip.Reference.IO.Golden;

/// <summary>How the golden reports (verify and compare) write a number and one tensor's comparison as JSON.</summary>
internal static class ComparisonJson
{
    /// <summary>A finite number as a JSON number; NaN and infinities as strings ("NaN", "Infinity").</summary>
    public static void Number(Utf8JsonWriter w, string name, double value)
    {
        if (double.IsFinite(value)) w.WriteNumber(name, value);
        else w.WriteString(name, value.ToString(CultureInfo.InvariantCulture));
    }

    /// <summary>
    /// The fields of one tensor's comparison, in a JSON object the caller has opened: name, then
    /// <paramref name="between"/> (e.g. a description), then passed, errors, tolerance, worst element, problem.
    /// </summary>
    public static void Fields(Utf8JsonWriter w, Comparison c, Action<Utf8JsonWriter>? between = null)
    {
        w.WriteString("name", c.Name);
        between?.Invoke(w);
        w.WriteBoolean("passed", c.Passed);
        Number(w, "max_abs_error", c.MaxAbsError);
        Number(w, "max_rel_error", c.MaxRelError);
        Number(w, "atol", c.Tolerance.Atol);
        Number(w, "rtol", c.Tolerance.Rtol);
        w.WriteStartArray("worst_index");
        foreach (var i in c.WorstIndex) w.WriteNumberValue(i);
        w.WriteEndArray();
        Number(w, "worst_actual", c.WorstActual);
        Number(w, "worst_expected", c.WorstExpected);
        if (c.Problem is not null) w.WriteString("problem", c.Problem);
    }
}
