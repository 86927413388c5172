// Evaluates a parsed chat template (jinja_parser.h) the way Jinja 2 does
// under transformers' settings: Python semantics for values and operators,
// Undefined printing as nothing, `set` inside a loop body local to that
// iteration, namespace() for state that outlives one.
//
// Thread-safe: a rendering only reads the template and owns its state.
#ifndef STRATA_ENGINE_TOKENIZER_JINJA_RENDERER_H_
#define STRATA_ENGINE_TOKENIZER_JINJA_RENDERER_H_

#include <string>

#include "absl/status/statusor.h"
#include "engine/tokenizer/jinja_parser.h"
#include "engine/tokenizer/jinja_value.h"

namespace strata::engine::jinja {

// Renders `tmpl` with the top-level variables `globals`.
// INVALID_ARGUMENT: "line N: ..." for an operation the values do not support
// (a type error, an attribute of an undefined value, a division by zero), or
// the template's own raise_exception("...") message as it is.
absl::StatusOr<std::string> Render(const Template& tmpl, const Dict& globals);

}  // namespace strata::engine::jinja

#endif  // STRATA_ENGINE_TOKENIZER_JINJA_RENDERER_H_
