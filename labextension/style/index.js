// The panel's styles: uPlot's and the notebook widgets' (shared chart look), then its own.
import 'uplot/dist/uPlot.min.css';
import '../widgets/lib/widgets.css';
import '../widgets/lib/charts.css';
import './base.css';
