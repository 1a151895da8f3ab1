//! The tool registry: the tools offered to the model, by name.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::edit_file::EditFileTool;
use super::exec::ExecTool;
use super::glob::GlobTool;
use super::grep::GrepTool;
use super::list_dir::ListDirTool;
use super::patch_file::PatchFileTool;
use super::read_file::ReadFileTool;
use super::web_fetch::WebFetchTool;
use super::write_file::WriteFileTool;
use super::{RiskTier, Tool, ToolSpec};

/// The tools offered to the model, by name, each with its spec, taken once when it
/// is registered (a spec holds a JSON schema: building it per call would be waste).
#[derive(Clone, Default)]
pub struct ToolRegistry {
    tools: BTreeMap<String, (ToolSpec, Arc<dyn Tool>)>,
}

impl ToolRegistry {
    /// All built-in tools.
    pub fn builtin() -> Self {
        let mut registry = Self::default();
        let tools: [Arc<dyn Tool>; 10] = [
            Arc::new(ReadFileTool),
            Arc::new(WriteFileTool),
            Arc::new(EditFileTool),
            Arc::new(PatchFileTool),
            Arc::new(ListDirTool),
            Arc::new(GlobTool),
            Arc::new(GrepTool),
            Arc::new(ExecTool),
            Arc::new(WebFetchTool),
            super::read_logs::tool(),
        ];
        for tool in tools {
            registry.register(tool);
        }
        registry
    }

    pub fn register(&mut self, tool: Arc<dyn Tool>) {
        let spec = tool.spec();
        self.tools.insert(spec.name.clone(), (spec, tool));
    }

    pub fn get(&self, name: &str) -> Option<Arc<dyn Tool>> {
        self.tools.get(name).map(|(_, tool)| tool.clone())
    }

    /// The spec of the tool named `name`, as taken when it was registered.
    pub fn spec(&self, name: &str) -> Option<&ToolSpec> {
        self.tools.get(name).map(|(spec, _)| spec)
    }

    /// The risk tier of the tool named `name`.
    pub fn risk(&self, name: &str) -> Option<RiskTier> {
        self.spec(name).map(|spec| spec.risk)
    }

    /// The registered tools' names, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tools.keys().map(String::as_str)
    }

    pub fn specs(&self) -> Vec<ToolSpec> {
        self.tools.values().map(|(spec, _)| spec.clone()).collect()
    }
}

impl std::fmt::Debug for ToolRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.tools.keys()).finish()
    }
}
