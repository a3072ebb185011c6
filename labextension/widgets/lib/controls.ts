// Toolbar controls shared by the chart widgets: each is a plain DOM element whose handler
// writes the widget's model; `set…` functions update it from the model without firing.
import { element } from "./format";

export interface IOption {
  value: string;
  label: string;
}

export function selectControl(
  title: string,
  onChange: (value: string) => void
): { root: HTMLLabelElement; set: (options: IOption[], value: string) => void } {
  const root = element("label", "labtrack-control", `${title} `);
  const input = element("select");
  root.appendChild(input);
  input.addEventListener("change", () => onChange(input.value));
  const set = (options: IOption[], value: string) => {
    const same =
      input.options.length === options.length &&
      options.every((o, i) => input.options[i].value === o.value && input.options[i].text === o.label);
    if (!same) {
      input.replaceChildren(
        ...options.map((o) => {
          const option = element("option", undefined, o.label);
          option.value = o.value;
          return option;
        })
      );
    }
    input.value = value;
  };
  return { root, set };
}

export function checkboxControl(
  title: string,
  onChange: (checked: boolean) => void
): { root: HTMLLabelElement; set: (checked: boolean) => void } {
  const root = element("label", "labtrack-control");
  const input = element("input");
  input.type = "checkbox";
  root.append(input, ` ${title}`);
  input.addEventListener("change", () => onChange(input.checked));
  return { root, set: (checked) => (input.checked = checked) };
}

/** A range slider: `onInput` while dragging, `onChange` when released. */
export function sliderControl(
  title: string,
  range: { min: number; max: number; step: number },
  onInput: (value: number) => void,
  onChange: (value: number) => void
): { root: HTMLLabelElement; set: (value: number) => void } {
  const root = element("label", "labtrack-control", `${title} `);
  const input = element("input");
  input.type = "range";
  input.min = String(range.min);
  input.max = String(range.max);
  input.step = String(range.step);
  const output = element("output", "labtrack-slider-value");
  root.append(input, output);
  const show = (value: number) => (output.textContent = value ? value.toFixed(2) : "off");
  input.addEventListener("input", () => {
    show(Number(input.value));
    onInput(Number(input.value));
  });
  input.addEventListener("change", () => onChange(Number(input.value)));
  return {
    root,
    set: (value) => {
      input.value = String(value);
      show(value);
    },
  };
}

export function buttonControl(title: string, onClick: () => void, tooltip = ""): HTMLButtonElement {
  const button = element("button", "labtrack-button", title);
  button.type = "button";
  button.title = tooltip;
  button.addEventListener("click", onClick);
  return button;
}

/** Toggle chips for choosing some of many names (metric keys, params…), in `available` order. */
export function chipsControl(
  title: string,
  onChange: (chosen: string[]) => void
): { root: HTMLDivElement; set: (available: string[], chosen: string[]) => void } {
  const root = element("div", "labtrack-chips");
  const heading = element("span", "labtrack-chips-title", title);
  const list = element("span", "labtrack-chips-list");
  root.append(heading, list);
  let available: string[] = [];
  let chosen = new Set<string>();
  const render = () => {
    list.replaceChildren(
      ...available.map((name) => {
        const chip = element("button", "labtrack-chip", name);
        chip.type = "button";
        chip.setAttribute("aria-pressed", String(chosen.has(name)));
        chip.addEventListener("click", () => {
          if (chosen.has(name)) {
            chosen.delete(name);
          } else {
            chosen.add(name);
          }
          render();
          onChange(available.filter((n) => chosen.has(n)));
        });
        return chip;
      })
    );
    root.hidden = available.length === 0;
  };
  return {
    root,
    set: (names, picked) => {
      available = [...names, ...picked.filter((n) => !names.includes(n))];
      chosen = new Set(picked);
      render();
    },
  };
}
