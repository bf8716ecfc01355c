/**
 * Renders a benchmark result as Markdown: the figures, their ratios to
 * microsocks, to the direct path and (for each srelay) to the bare relay on
 * its runtime, the machine, the notes, and the sections.
 *
 * @module
 */
import {
  ACL_FIGURES,
  AUTH_FIGURES,
  type BenchResult,
  type ColumnResult,
  FIGURES,
  type FigureSpec,
  METRICS_FIGURES,
  type SectionFigureSpec,
  type SectionResult,
  STARTUP_FIGURES,
  WORKERS_FIGURES,
} from "./figures.ts";
import { PROXY_PROTOCOL_FIGURES, proxyProtocolSummary } from "./proxy_section.ts";
import { UDP_FIGURES, udpSummary } from "./udp_section.ts";
import { BARE_RELAY_OF } from "./servers.ts";

function formatValue(figure: FigureSpec, value: number | null | undefined): string {
  if (value === null || value === undefined) return "–";
  return (value / figure.displayDivisor).toLocaleString("en-US", {
    minimumFractionDigits: figure.digits,
    maximumFractionDigits: figure.digits,
  });
}

function formatRatio(
  value: number | null | undefined,
  reference: number | null | undefined,
): string {
  if (value === null || value === undefined || !reference) return "–";
  return `${(value / reference).toFixed(2)}×`;
}

function labelOf(figure: FigureSpec, config: BenchResult["config"]): string {
  return figure.label.replace(/\{(\w+)\}/g, (_, name: string) => {
    const value = config[name];
    return typeof value === "number" ? value.toLocaleString("en-US") : String(value);
  });
}

function row(cells: readonly string[]): string {
  return `| ${cells.join(" | ")} |`;
}

function table(
  config: BenchResult["config"],
  columns: readonly ColumnResult[],
  cell: (figure: FigureSpec, column: ColumnResult) => string,
  figures: readonly FigureSpec[],
): string[] {
  return [
    row(["figure", "better", ...columns.map((c) => c.label)]),
    row(["---", "---", ...columns.map(() => "---:")]),
    ...figures.map((f) =>
      row([
        labelOf(f, config),
        f.higherIsBetter ? "higher" : "lower",
        ...columns.map((c) => cell(f, c)),
      ])
    ),
  ];
}

function formatSectionValue(figure: SectionFigureSpec, value: number | null | undefined): string {
  if (value === null || value === undefined) return "–";
  return value.toLocaleString("en-US", {
    minimumFractionDigits: figure.digits,
    maximumFractionDigits: figure.digits,
  });
}

/** A section (authentication or access control) as Markdown: what ran, then figure | median | rounds. */
function renderSection(
  title: string,
  section: SectionResult,
  figures: readonly SectionFigureSpec[],
  extra: string[] = [],
): string[] {
  const lines = ["", `### ${title}`, "", `${section.server}:`, "", ...section.setup.map((line) => `- ${line}`)];
  if (section.skipped !== undefined) return [...lines, "", `Skipped: ${section.skipped}.`];
  lines.push(
    "",
    row(["figure", "better", "median", "samples"]),
    row(["---", "---", "---:", "---"]),
    ...figures.map((f) =>
      row([
        f.label,
        f.higherIsBetter ? "higher" : "lower",
        formatSectionValue(f, section.figures[f.key]),
        (section.samples[f.key] ?? []).map((v) => formatSectionValue(f, v)).join(", "),
      ])
    ),
    ...extra,
  );
  if (section.notes.length > 0) lines.push("", "Notes:", "", ...section.notes.map((n) => `- ${n}`));
  return lines;
}

/** Ratios of the auth figures that the issue asks for, in words. */
function authSummary(section: SectionResult): string[] {
  const f = section.figures;
  const ratio = (a: number | null | undefined, b: number | null | undefined) =>
    typeof a === "number" && typeof b === "number" && b > 0 ? `${(a / b).toFixed(2)}×` : "–";
  return [
    "",
    `p99 while guessing ÷ p99 with no guessing: ${
      ratio(f.echo_p99_guess_new_us, f.echo_p99_quiet_us)
    } (a new address per guess), ${ratio(f.echo_p99_guess_one_us, f.echo_p99_quiet_us)} (one address).`,
  ];
}

/** Whether the checks stay within 10 % of the rate without them. */
function aclSummary(section: SectionResult): string[] {
  const verdict = (value: number | null | undefined) =>
    typeof value !== "number" ? "not measured" : value >= 0.9 ? "within 10 %: yes" : "within 10 %: **no**";
  return [
    "",
    `With the checks, sequential: ${verdict(section.figures.conn_seq_ratio)}; 50 concurrent: ${
      verdict(section.figures.conn_50_ratio)
    }.`,
  ];
}

/** Whether `--metrics` stays within 5 % of the figures without it. */
function metricsSummary(section: SectionResult): string[] {
  const verdict = (value: number | null | undefined) =>
    typeof value !== "number" ? "not measured" : value >= 0.95 ? "within 5 %: yes" : "within 5 %: **no**";
  const f = section.figures;
  return [
    "",
    `With --metrics: connections sequential ${verdict(f.conn_seq_ratio)}; 50 concurrent ${
      verdict(f.conn_50_ratio)
    }; bulk 1 stream ${verdict(f.bulk_1_ratio)}; 8 streams ${verdict(f.bulk_8_ratio)}.`,
  ];
}

/** The start-up figures against the target, in words. */
function startupSummary(section: SectionResult): string[] {
  const f = section.figures;
  const ms = (value: number | null | undefined) => typeof value === "number" ? `${value.toFixed(1)} ms` : "–";
  const lines = [
    "",
    `The binary prints \`listening on\` ${ms(f.bin_listening_ms)} after exec, median (fastest ${
      ms(f.bin_listening_min_ms)
    }; target: 15 ms or less: ${
      typeof f.bin_listening_ms !== "number" ? "not measured" : f.bin_listening_ms <= 15 ? "met" : "**missed**"
    }); a compiled Bun program that only prints a line takes ${ms(f.floor_compiled_ms)}.`,
  ];
  if (typeof f.bin_vs_baseline_ratio === "number") {
    lines.push("", `Against the baseline binary: ${f.bin_vs_baseline_ratio.toFixed(3)}× its time to \`listening on\`.`);
  }
  return lines;
}

/** The srelay columns beside the bare relay on their runtime: value ÷ bare relay. */
function bareRatios(result: BenchResult): string[] {
  const pairs = result.columns.flatMap((column) => {
    const bare = result.columns.find((c) => c.id === BARE_RELAY_OF[column.id]);
    return bare === undefined ? [] : [{ column, bare }];
  });
  if (pairs.length === 0) return [];
  return [
    "",
    "Ratio of each srelay to the bare relay on its runtime (srelay ÷ bare relay; the binary and node:net run on Bun):",
    "",
    row(["figure", "better", ...pairs.map(({ column, bare }) => `${column.label} ÷ ${bare.label}`)]),
    row(["---", "---", ...pairs.map(() => "---:")]),
    ...FIGURES.map((f) =>
      row([
        labelOf(f, result.config),
        f.higherIsBetter ? "higher" : "lower",
        ...pairs.map(({ column, bare }) => formatRatio(column.figures[f.key], bare.figures[f.key])),
      ])
    ),
  ];
}

/** The Markdown report for `result`. */
export function renderMarkdown(result: BenchResult): string {
  const columns = result.columns;
  const reference = (id: string) => columns.find((c) => c.id === id);
  const microsocks = reference("microsocks");
  const direct = reference("direct");
  const machine = Object.entries(result.machine).map(([k, v]) => `${k}: ${v}`).join("; ");
  const config = Object.entries(result.config).map(([k, v]) => `${k}=${v}`).join(", ");
  const lines = [
    `Run ${result.date}, \`${result.command}\`, ${result.seconds.toFixed(0)} s${
      result.quick ? " (quick: smaller transfers, fewer rounds)" : ""
    }.`,
    "",
    `Machine: ${machine}.`,
    "",
    `Settings: ${config}.`,
    "",
  ];
  if (columns.length === 0) lines.pop(); // The sections start with their own blank line.
  else {
    lines.push(
      "Medians over the rounds; RSS is one reading per server: idle right after start-up, with sessions after the rounds.",
      "",
      ...table(result.config, columns, (f, c) => formatValue(f, c.figures[f.key]), FIGURES),
    );
  }
  if (microsocks !== undefined) {
    lines.push(
      "",
      "Ratio to microsocks (value ÷ microsocks; above 1 is better where higher is better, worse where lower is better):",
      "",
      ...table(
        result.config,
        columns.filter((c) => c.id !== "direct"),
        (f, c) => formatRatio(c.figures[f.key], microsocks.figures[f.key]),
        FIGURES,
      ),
    );
  }
  if (direct !== undefined) {
    lines.push(
      "",
      "Ratio to direct, the same load with no proxy (value ÷ direct):",
      "",
      ...table(
        result.config,
        columns.filter((c) => c.id !== "direct"),
        (f, c) => formatRatio(c.figures[f.key], direct.figures[f.key]),
        FIGURES.filter((f) => f.direct),
      ),
    );
  }
  lines.push(...bareRatios(result));
  const notes = [
    ...result.skipped.map((s) => `${s.label} skipped: ${s.reason}`),
    ...columns.flatMap((c) => c.notes.map((n) => `${c.label}: ${n}`)),
    ...result.notes,
  ];
  if (notes.length > 0) lines.push("", "Notes:", "", ...notes.map((n) => `- ${n}`));
  if (result.auth !== null) {
    lines.push(...renderSection("Authentication", result.auth, AUTH_FIGURES, authSummary(result.auth)));
  }
  if (result.acl !== null) {
    lines.push(...renderSection("Access control", result.acl, ACL_FIGURES, aclSummary(result.acl)));
  }
  if (result.metrics !== null) {
    lines.push(...renderSection("Metrics", result.metrics, METRICS_FIGURES, metricsSummary(result.metrics)));
  }
  if (result.proxy !== null) {
    lines.push(
      ...renderSection(
        "PROXY protocol",
        result.proxy,
        PROXY_PROTOCOL_FIGURES,
        proxyProtocolSummary(result.proxy),
      ),
    );
  }
  if (result.udp !== null) {
    lines.push(...renderSection("UDP ASSOCIATE", result.udp, UDP_FIGURES, udpSummary(result.udp)));
  }
  if (result.startup !== null) {
    const measured = STARTUP_FIGURES.filter((f) => f.key in result.startup!.figures);
    lines.push(...renderSection("Start-up", result.startup, measured, startupSummary(result.startup)));
  }
  if (result.workers !== null) {
    lines.push(...renderSection("Workers", result.workers, WORKERS_FIGURES));
  }
  return `${lines.join("\n")}\n`;
}
