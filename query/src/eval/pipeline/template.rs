//! Go `text/template` for `line_format` and `label_format`, with Loki's function set.

mod decimal;
mod exec;
mod funcs;
mod gofmt;
mod gotime;
mod parse;
mod value;

/// Where a template reads labels from (`.name`, `.`).
pub(crate) trait LabelSource {
    /// The value of a label, `None` when absent.
    fn get(&self, name: &str) -> Option<&str>;
    /// All labels sorted by name.
    fn sorted(&self) -> Vec<(String, String)>;
    /// Number of labels.
    fn len(&self) -> usize;
}

impl LabelSource for Vec<(String, String)> {
    fn get(&self, name: &str) -> Option<&str> {
        self.binary_search_by(|(n, _)| n.as_str().cmp(name))
            .ok()
            .map(|i| self[i].1.as_str())
    }

    fn sorted(&self) -> Vec<(String, String)> {
        self.clone()
    }

    fn len(&self) -> usize {
        Vec::len(self)
    }
}

/// A compiled template.
pub(crate) struct Template {
    /// Go's template name ("line" or "label"), part of error texts.
    name: &'static str,
    text: String,
    root: parse::List,
    defines: Vec<(String, parse::List)>,
    simple_key: Option<String>,
}

struct KnownFuncs;

impl parse::FuncCheck for KnownFuncs {
    fn exists(&self, name: &str) -> bool {
        funcs::lookup(name).is_some()
    }
}

impl Template {
    /// Parses a template; the error reads like Go's (`template: line:1: function "x" not
    /// defined`).
    pub(crate) fn compile(name: &'static str, text: &str) -> Result<Self, String> {
        let parsed =
            parse::parse(text, &KnownFuncs).map_err(|e| format!("template: {name}:{e}"))?;
        // Loki's fast path: a template that is exactly `{{.field}}` reads the label directly.
        let simple_key = match parsed.root.as_slice() {
            [parse::Node::Action(p)] if p.cmds.len() == 1 && p.cmds[0].args.len() == 1 => match &p
                .cmds[0]
                .args[0]
            {
                parse::Arg::Field { idents, .. } if idents.len() == 1 => Some(idents[0].clone()),
                _ => None,
            },
            _ => None,
        };
        Ok(Template {
            name,
            text: text.to_string(),
            root: parsed.root,
            defines: parsed.defines,
            simple_key,
        })
    }

    /// The label a `{{.field}}` template reads, if that is all it does.
    pub(crate) fn simple_key(&self) -> Option<&str> {
        self.simple_key.as_deref()
    }

    /// Runs the template. The error reads like Go's execution errors.
    pub(crate) fn execute(
        &self,
        data: &dyn LabelSource,
        line: &str,
        ts: i64,
    ) -> Result<String, String> {
        let mut st = exec::State::new(self, data, line, ts);
        match st.run(&self.root) {
            Ok(()) => Ok(st.out),
            Err(e) => Err(self.format_error(&e)),
        }
    }

    fn format_error(&self, e: &exec::ExecErr) -> String {
        let pos = e.pos.min(self.text.len());
        let before = self.text.get(..pos).unwrap_or("");
        let line = 1 + before.matches('\n').count();
        let col = match before.rfind('\n') {
            Some(nl) => pos - (nl + 1),
            None => pos,
        };
        let mut ctx = e.context.clone();
        if ctx.chars().count() > 20 {
            ctx = format!("{}...", ctx.chars().take(20).collect::<String>());
        }
        format!(
            "template: {name}:{line}:{col}: executing \"{name}\" at <{ctx}>: {msg}",
            name = self.name,
            msg = e.msg
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(t: &str, labels: &[(&str, &str)]) -> Result<String, String> {
        let mut l: Vec<(String, String)> = labels
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        l.sort();
        Template::compile("line", t)?.execute(&l, "the line", 1_656_331_200_000_000_000)
    }

    #[test]
    fn basics() {
        assert_eq!(
            run(
                "foo{{.foo}}buzz{{  .bar  }}",
                &[("foo", "blip"), ("bar", "blop")]
            )
            .unwrap(),
            "fooblipbuzzblop"
        );
        assert_eq!(
            run(
                "{{ if eq .a \"x\" }}yes{{ else if eq .a \"y\" }}why{{ else }}no{{ end }}",
                &[("a", "y")]
            )
            .unwrap(),
            "why"
        );
        assert_eq!(run("{{- \"a\" -}}  b  {{- \"c\" }}", &[]).unwrap(), "abc");
        assert_eq!(
            run(
                "{{ $x := .a }}{{ $x }}{{ $x = \"z\" }}{{ $x }}",
                &[("a", "1")]
            )
            .unwrap(),
            "1z"
        );
        assert_eq!(
            run(
                "{{ range $k, $v := . }}{{$k}}={{$v}};{{ end }}",
                &[("b", "2"), ("a", "1")]
            )
            .unwrap(),
            "a=1;b=2;"
        );
        assert_eq!(
            run("{{ with .missing }}x{{ else }}none{{ end }}", &[]).unwrap(),
            "none"
        );
        assert_eq!(run("{{ __line__ | ToUpper }}", &[]).unwrap(), "THE LINE");
        assert_eq!(
            run("{{ __timestamp__ | date \"2006-01-02\" }}", &[]).unwrap(),
            "2022-06-27"
        );
        assert_eq!(
            run("{{ len \"abc\" }} {{ printf \"%05.1f\" 3.14159 }}", &[]).unwrap(),
            "3 003.1"
        );
        assert_eq!(run("{{/* c */}}x{{- /* d */ -}} y", &[]).unwrap(), "xy");
        assert_eq!(
            run(
                "{{ range $q := fromJson .j }}{{ $q.a }} {{ end }}",
                &[("j", "[{\"a\":1},{\"a\":\"x\"}]")]
            )
            .unwrap(),
            "1 x "
        );
        assert_eq!(
            run("{{ and 1 0 }} {{ or 0 \"\" \"z\" }} {{ not true }}", &[]).unwrap(),
            "0 z false"
        );
        assert_eq!(run("{{ range 3 }}{{ . }}{{ end }}", &[]).unwrap(), "012");
        assert_eq!(
            run(
                "{{ define \"t\" }}[{{ . }}]{{ end }}{{ template \"t\" \"x\" }}",
                &[]
            )
            .unwrap(),
            "[x]"
        );
        assert_eq!(run("{{ range $i, $e := fromJson \"[1,2,3]\" }}{{ if eq $i 1 }}{{ continue }}{{ end }}{{ $e }}{{ end }}", &[]).unwrap(), "13");
    }

    #[test]
    fn errors() {
        assert_eq!(
            Template::compile("line", "{{ foo }}").err().unwrap(),
            "template: line:1: function \"foo\" not defined"
        );
        assert!(Template::compile("line", "{{ .a ").is_err());
        assert!(Template::compile("line", "{{ if .a }}x").is_err());
        assert!(Template::compile("line", "{{ end }}").is_err());
        assert_eq!(
            run("{{.foo Replace \"foo\"}}", &[("foo", "blip")]).unwrap_err(),
            "template: line:1:2: executing \"line\" at <.foo>: foo is not a method but has arguments"
        );
        assert_eq!(
            run("{{.foo | now}}", &[("foo", "blip")]).unwrap_err(),
            "template: line:1:9: executing \"line\" at <now>: wrong number of args for now: want 0 got 1"
        );
        assert!(run("{{ eq .a 200 }}", &[("a", "200")]).is_err());
        assert!(run("{{ div 1 0 }}", &[]).is_err());
    }
}
