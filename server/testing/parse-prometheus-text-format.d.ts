// The package ships no types: this is the shape its README documents (prom2json's), values as strings.
declare module 'parse-prometheus-text-format' {
  namespace parsePrometheusTextFormat {
    interface Sample {
      labels?: Record<string, string>;
      value: string;
    }
    interface HistogramSample {
      labels?: Record<string, string>;
      /** Cumulative counts keyed by their `le` bound, e.g. "0.1" or "+Inf". */
      buckets: Record<string, string>;
      count: string;
      sum: string;
    }
    interface Family {
      name: string;
      help: string;
      type: 'COUNTER' | 'GAUGE' | 'HISTOGRAM' | 'SUMMARY' | 'UNTYPED';
      metrics: Array<Sample | HistogramSample>;
    }
  }
  function parsePrometheusTextFormat(text: string): parsePrometheusTextFormat.Family[];
  export = parsePrometheusTextFormat;
}
